package instance

// SetDiskUsage replaces how m reads the crashes' file system usage.
func SetDiskUsage(m *Manager, f func(string) (DiskUsage, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.diskUsage = f
}
