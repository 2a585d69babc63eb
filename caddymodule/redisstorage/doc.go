// Package redisstorage is being written.
package redisstorage
