log_level = "Warning"
