// Package pin keeps the Scalekit Go SDK in this module's requirements, so Go
// snippets compiled here build against the version pinned in go.mod.
package pin

import _ "github.com/scalekit-inc/scalekit-sdk-go/v2"
