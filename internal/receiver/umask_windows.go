package receiver

// privateUmask does nothing on Windows, which has no umask: the state and
// mirrors take their directory's access control list.
func privateUmask() {}
