package agent

import (
	"crypto/rand"

	"github.com/vishvananda/netns"
)

var randRead = rand.Read

func openNetNS(path string) (netns.NsHandle, error) {
	return netns.GetFromPath(path)
}
