package container

import (
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Generated names are Docker-style adjective_surname pairs of
// harbour-and-sea words.
var (
	adjectives = []string{"brave", "calm", "eager", "fair", "gentle", "happy", "keen", "lucid", "merry", "nimble",
		"proud", "quiet", "rapid", "sharp", "steady", "swift", "tidy", "vivid", "wise", "zesty"}
	nouns = []string{"anchor", "beacon", "buoy", "cove", "dock", "ferry", "harbor", "jetty", "keel", "lagoon",
		"mast", "mooring", "pier", "quay", "reef", "rudder", "sail", "tide", "wharf", "yawl"}
)

// generateName returns an unused adjective_noun name, with a number added
// when the plain pairs run out.
func (e *Engine) generateName() string {
	for i := 0; ; i++ {
		n := adjectives[rand.IntN(len(adjectives))] + "_" + nouns[rand.IntN(len(nouns))]
		if i > 20 {
			n += "_" + newID()[:4]
		}
		if _, err := os.Lstat(filepath.Join(e.root, namesDir, n)); err != nil {
			return n
		}
	}
}
