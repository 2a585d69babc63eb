//go:build race

package cluster

// raceEnabled: the test binary was built with -race, so the caddy binary is
// too (its packages are then already in the build cache, and the nodes run
// under the race detector).
const raceEnabled = true
