"""Firefox QR pairing from the appliance side: the TLS-PSK channel and the authority."""
