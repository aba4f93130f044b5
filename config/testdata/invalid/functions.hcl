target "iqn.2026-11.org.example:a" {
  incoming_user "a" {
    secret = env("SCSTD_TEST_UNSET")
  }
  incoming_user "b" {
    secret = file("no-such-secret")
  }
  incoming_user "c" {
    secret = file("")
  }
  incoming_user "d" {
    secret = nosuchfunc("x")
  }
  incoming_user "e" {
    secret = var.secret
  }
}
