# Each file of a directory may not set it again.
log_level = "debug"
