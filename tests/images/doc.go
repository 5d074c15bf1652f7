// Package images holds root integration tests of berth's image commands,
// run through the berth binary against a real local registry.
package images
