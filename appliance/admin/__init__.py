"""The admin API the tray and `foxden` CLI use (mounted at /admin/v1 on the main app).

Authenticated by a random token kept in a 0600 file in the config dir; accepted from
loopback, and from another machine only over HTTPS.
"""
