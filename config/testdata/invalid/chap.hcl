iscsi {
  incoming_user "disc" {
    secret = "short"
  }
  outgoing_user "disc-out" {
    secret = "twelve-chars"
  }
  outgoing_user "second" {
    secret = "another-one-12"
  }
}

target "iqn.2026-11.org.example:a" {
  chap_algorithms = ["MD5", "SHA-512", "MD5"]
  incoming_user "joe" {
    secret = "same-secret-12"
  }
  incoming_user "joe" {
    secret = "other-secret-12"
  }
  outgoing_user "jim" {
    secret = "same-secret-12"
  }
}

target "iqn.2026-11.org.example:b" {
  outgoing_user "lonely" {
    secret = "lonely-secret-12"
  }
}

target "iqn.2026-11.org.example:c" {
  chap_algorithms = []
  incoming_user "nosecret" {
  }
}
