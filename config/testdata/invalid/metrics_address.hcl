metrics {
  listen = "::1:9470"
  port   = 9470
}
