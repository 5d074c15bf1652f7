package container

// emit records a container event (Docker's actions: create, start, die,
// stop, kill, destroy, rename, health_status, oom) for `berth events`.
func (e *Engine) emit(action string, c *Container, attrs map[string]string) {}
