log_level = "debug"
