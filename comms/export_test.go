package comms

// Invalidate empties the machine cache, as a notification that a machine
// changed does.
func (c *Comms) Invalidate() { c.machines.invalidate() }
