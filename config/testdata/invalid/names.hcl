target "iqn.2026-11.org.Example:upper" {
}
target "iqn.2026-13.org.example:month" {
}
target "iqn.26-11.org.example:year" {
}
target "iqn.2026-11.:nodomain" {
}
target "iqn.2026-11.org.example:white space" {
}
target "eui.02004567A425678" {
}
target "naa.52004567BA64678D" {
}
target "naa.xyz4567BA64678D" {
}
target "storage1" {
}
