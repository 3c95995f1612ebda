package comms

// Invalidate empties the machine cache, as a notification that a machine
// changed does.
func (c *Comms) Invalidate() { c.machines.invalidate() }

// PollWaiting reports whether a poll of the machine waits on this node.
func (c *Comms) PollWaiting(machineID int64) bool {
	c.hub.mu.Lock()
	defer c.hub.mu.Unlock()
	return len(c.hub.pollers[machineID]) > 0
}
