// Package focalx is being written.
package focalx
