// Command burst sends n concurrent requests that all need the same cached
// provider token to a freshly started idv handler, then reads the sandbox's
// call counters to report how many times the token was fetched upstream.
//
// Every request gets its own connection, opened and warmed (with a request
// outside the handler's prefix) before the burst, so the n requests reach
// the handler together. It prints one JSON line for bench/run.sh.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type result struct {
	Kind     string  `json:"kind"`
	Provider string  `json:"provider"`
	N        int     `json:"n"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	Fetches  int     `json:"fetches"`
	WallMS   float64 `json:"wall_ms"`
	P50MS    float64 `json:"p50_ms"`
	MaxMS    float64 `json:"max_ms"`
	FirstErr string  `json:"first_error,omitempty"`
}

func main() {
	var (
		target   = flag.String("url", "", "the URL every request asks (needs the cached token)")
		warm     = flag.String("warm", "", "a URL outside the handler's prefix, to open each connection first")
		sandbox  = flag.String("sandbox", "", "the sandbox's base URL (for /__sandbox/reset and /__sandbox/calls)")
		op       = flag.String("op", "incode executive/log-in", `the calls to count: "<provider> <op>"`)
		provider = flag.String("provider", "incode", "the provider name reported")
		header   = flag.String("header", "", `an extra request header, "Name: value"`)
		n        = flag.Int("n", 1, "concurrent requests")
	)
	flag.Parse()
	if *target == "" || *sandbox == "" || *warm == "" {
		fmt.Fprintln(os.Stderr, "burst: -url, -warm and -sandbox are required")
		os.Exit(2)
	}
	if err := post(*sandbox + "/__sandbox/reset"); err != nil {
		fail(err)
	}

	clients := make([]*http.Client, *n)
	var wg sync.WaitGroup
	errs := make(chan error, *n)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true}}
		wg.Add(1)
		go func(c *http.Client) {
			defer wg.Done()
			if _, _, err := get(c, *warm, ""); err != nil {
				errs <- err
			}
		}(clients[i])
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		fail(fmt.Errorf("warming connections: %w", err))
	}

	start := make(chan struct{})
	lat := make([]time.Duration, *n)
	statuses := make([]int, *n)
	bodies := make([]string, *n)
	for i, c := range clients {
		wg.Add(1)
		go func(i int, c *http.Client) {
			defer wg.Done()
			<-start
			t := time.Now()
			statuses[i], bodies[i], _ = get(c, *target, *header)
			lat[i] = time.Since(t)
		}(i, c)
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	wall := time.Since(t0)

	res := result{Kind: "burst", Provider: *provider, N: *n, WallMS: ms(wall)}
	for i, s := range statuses {
		if s == http.StatusOK {
			res.OK++
		} else {
			res.Failed++
			if res.FirstErr == "" {
				res.FirstErr = fmt.Sprintf("%d %s", s, strings.TrimSpace(bodies[i]))
			}
		}
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	res.P50MS, res.MaxMS = ms(lat[len(lat)/2]), ms(lat[len(lat)-1])

	calls, err := counts(*sandbox + "/__sandbox/calls")
	if err != nil {
		fail(err)
	}
	for k, v := range calls {
		if strings.HasPrefix(k, *op+" ") {
			res.Fetches += v
		}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func get(c *http.Client, url, header string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if name, value, ok := strings.Cut(header, ":"); ok {
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, string(b), nil
}

func post(url string) error {
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}

func counts(url string) (map[string]int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Calls map[string]int `json:"calls"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	return out.Calls, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "burst:", err)
	os.Exit(1)
}
