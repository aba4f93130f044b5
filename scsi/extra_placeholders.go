package scsi

// Placeholder for the command table that the provisioning work defines in
// its own file; that work deletes this file.

// provisioningCommands are UNMAP, WRITE SAME, COMPARE AND WRITE, GET LBA
// STATUS, ORWRITE, PRE-FETCH, SANITIZE, WRITE ATOMIC and EXTENDED COPY.
var provisioningCommands []commandDesc
