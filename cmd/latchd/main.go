// Command latchd is the Latch authentication server.
//
//	latchd [serve] [flags]    serve the API (default)
//	latchd migrate [flags]    apply database migrations
//	latchd keys rotate|list   manage signing keys
//	latchd keys seal          encrypt values stored before LATCH_MASTER_KEY was set
//	latchd version
//
// Every flag has a LATCH_* environment variable; see latchd -h.
package main

import (
	"os"

	"github.com/latchauth/latch/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }
