-- Devices and their command queues (owned by server/accounts/devices.py).
CREATE TABLE IF NOT EXISTS _placeholder_devices (x INTEGER)
