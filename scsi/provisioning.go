package scsi

// provisioningCommands are UNMAP, WRITE SAME, COMPARE AND WRITE, GET LBA
// STATUS, ORWRITE, PRE-FETCH, SANITIZE and WRITE ATOMIC.
var provisioningCommands = []commandDesc{}
