package scsi

// LogicalUnitReset performs the SCSI side of a LOGICAL UNIT RESET task
// management function (SAM-5 §7.7) received on nexus n for lu: the
// device's SPC-2 reservation and medium removal preventions are released
// and every nexus, n included,
// gets BUS DEVICE RESET FUNCTION OCCURRED (29h/03h) on its next command to
// the device. Aborting the tasks in flight is the transport's part.
func LogicalUnitReset(n *Nexus, lu *LogicalUnit) {
	if lu == nil || lu.Device == nil {
		return
	}
	lu.Device.resetReservations()
	lu.Device.clearPrevent()
	lu.Device.resetEpoch.Add(1)
}

// TargetReset performs the SCSI side of a TARGET WARM RESET or TARGET
// COLD RESET received on nexus n: a logical unit reset of every device in
// m, each once even when mapped at several LUNs.
func TargetReset(n *Nexus, m *LUNMap) {
	seen := make(map[*Device]bool, m.Len())
	for _, l := range m.LUNs() {
		lu := m.Lookup(l)
		if seen[lu.Device] {
			continue
		}
		seen[lu.Device] = true
		LogicalUnitReset(n, lu)
	}
}
