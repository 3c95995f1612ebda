// Command pingprobe calls a cuttle node's ping route at an interval and
// prints how long each answer took, for testcluster.StartPinger. It runs
// in a process of its own so that the latencies it measures are the
// node's, not those of a test process busy with an attack.
//
//	pingprobe -url http://127.0.0.1:8080/api/octopusservernodes/ping -interval 20ms
//
// It calls the URL every interval, or as soon as the previous answer came
// if that took longer, each time on a new connection as a load balancer's
// health check does, until its standard input ends. For each call it
// prints one line: the nanoseconds from the request to the last byte of a
// 200 answer, or "fail" and what went wrong (an error, another status, or
// no answer within -timeout).
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	url := flag.String("url", "", "the URL to call")
	interval := flag.Duration("interval", 20*time.Millisecond, "how often to call it")
	timeout := flag.Duration("timeout", 5*time.Second, "how long a call may take before it fails")
	flag.Parse()
	if *url == "" || *interval <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		took, err := call(client, *url)
		if err != nil {
			fmt.Printf("fail after %v: %v\n", took.Round(time.Millisecond), err)
		} else {
			fmt.Println(took.Nanoseconds())
		}
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// call gets url and reads its answer to the end.
func call(client *http.Client, url string) (time.Duration, error) {
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return time.Since(start), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("answered %s", resp.Status)
	}
	return took, err
}
