// Command bodysink stands in for the provider in the big-body rows of
// bench/run.sh: POST /0/omni/bench/upload reads the whole body and answers
// its size, GET /0/omni/bench/download sends -size bytes; every other
// request goes to the sandbox (-sandbox), so an idv handler pointed here
// still starts sessions.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	size := flag.Int("size", 5<<20, "download size in bytes")
	sandbox := flag.String("sandbox", "", "the sandbox's base URL")
	flag.Parse()
	up, err := url.Parse(*sandbox)
	if err != nil || *sandbox == "" {
		fmt.Fprintln(os.Stderr, "bodysink: -sandbox is required")
		os.Exit(2)
	}
	payload := make([]byte, *size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /0/omni/bench/upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"read":%d}`, n)
	})
	mux.HandleFunc("GET /0/omni/bench/download", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		_, _ = w.Write(payload)
	})
	mux.Handle("/", rp)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bodysink:", err)
		os.Exit(1)
	}
	_ = http.Serve(ln, mux)
}
