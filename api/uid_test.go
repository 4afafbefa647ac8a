package api

import "os"

func currentUID() int { return os.Getuid() }
