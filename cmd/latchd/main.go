// Command latchd is the Latch authentication server.
//
//	latchd [serve] [flags]    serve the API (the command when none is given)
//	latchd migrate [flags]    apply pending database migrations
//	latchd keys rotate        add a signing key that becomes the active one
//	latchd keys list          list the signing keys that still verify tokens
//	latchd keys seal          encrypt values stored before LATCH_MASTER_KEY was set
//	latchd version            print the version
//	latchd help [command]     list the commands, or show one's flags
//
// Every flag is also a LATCH_* environment variable; flags win. The wiring
// is internal/app, which end-to-end tests start in process.
package main

import (
	"os"

	"github.com/latchauth/latch/internal/app"
)

func main() { os.Exit(app.Main(os.Args[1:], os.Stdout, os.Stderr)) }
