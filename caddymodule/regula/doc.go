// Package regula is being written.
package regula
