target "iqn.2026-11.org.example:a" {
  redirect = "192.0.2.20:3260"
}
target "iqn.2026-11.org.example:b" {
  redirect = "192.0.2.20:3260 forever"
}
target "iqn.2026-11.org.example:c" {
  redirect = "2001:db8::1:3260 temp"
}
target "iqn.2026-11.org.example:d" {
  redirect = "[2001:db8::1]:99999 perm"
}
target "iqn.2026-11.org.example:e" {
  redirect = "[2001:db8::1 perm"
}
target "iqn.2026-11.org.example:f" {
  redirect = "bad_host:3260 temp"
}
target "iqn.2026-11.org.example:g" {
  redirect = "[fe80::1%eth0]:3260 temp"
}
