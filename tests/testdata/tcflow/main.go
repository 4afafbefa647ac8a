// Command tcflow drives lodged through the Go client
// (github.com/moby/moby/client) the way testcontainers-go does: a
// container on one user network with an exposed port bound to an
// ephemeral host port ("" or "0", by its argument), found again by an
// anchored name filter, followed on the event stream by its label. It
// prints what it saw as JSON for the end-to-end test to judge, and
// removes what it made.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// report is what the test checks.
type report struct {
	HostPort    string   // the port inspect gives for 8080/tcp
	Body        string   // what that port answered
	Networks    []string // the container's networks in inspect
	IP          string   // its address on the user network
	ByName      []string // names listed by name=^NAME$
	ByShortName int      // how many a filter on a prefix anchored at both ends lists
	LabelEvent  string   // the action of the first event a label filter let through
	Errors      []string
}

func main() {
	hostPort := ""
	if len(os.Args) > 1 {
		hostPort = os.Args[1]
	}
	var r report
	if err := run(hostPort, &r); err != nil {
		r.Errors = append(r.Errors, err.Error())
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

func run(hostPort string, r *report) error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return err
	}
	defer cli.Close()
	const name, netName, label = "tc-web", "tc-net", "org.testcontainers.sessionId"
	if _, err := cli.NetworkCreate(ctx, netName, client.NetworkCreateOptions{Driver: "bridge"}); err != nil {
		return err
	}
	defer cli.NetworkRemove(context.Background(), netName, client.NetworkRemoveOptions{})

	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	ev := cli.Events(evCtx, client.EventsListOptions{Filters: make(client.Filters).Add("label", label+"=s1").Add("type", "container")})

	port := network.MustParsePort("8080/tcp")
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:        "busybox",
			Cmd:          []string{"sh", "-c", "mkdir /www; echo from-tc > /www/i; exec httpd -f -p 8080 -h /www"},
			ExposedPorts: network.PortSet{port: {}},
			Labels:       map[string]string{label: "s1"},
		},
		HostConfig:       &container.HostConfig{PortBindings: network.PortMap{port: {{HostPort: hostPort}}}},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {Aliases: []string{"web"}}}},
	})
	if err != nil {
		return err
	}
	defer cli.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	select {
	case m := <-ev.Messages:
		r.LabelEvent = string(m.Action)
	case err := <-ev.Err:
		r.Errors = append(r.Errors, "events: "+err.Error())
	case <-time.After(10 * time.Second):
		r.Errors = append(r.Errors, "no event through the label filter")
	}

	in, err := cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	if bs := in.Container.NetworkSettings.Ports[port]; len(bs) > 0 {
		r.HostPort = bs[0].HostPort
	}
	for n, es := range in.Container.NetworkSettings.Networks {
		r.Networks = append(r.Networks, n)
		if n == netName && es.IPAddress.IsValid() {
			r.IP = es.IPAddress.String()
		}
	}
	sort.Strings(r.Networks)
	if r.HostPort != "" {
		r.Body = get(ctx, "http://127.0.0.1:"+r.HostPort+"/i")
	}

	for _, f := range []string{"^" + name + "$", "^tc-we$"} {
		l, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("name", f)})
		if err != nil {
			return err
		}
		if f == "^tc-we$" {
			r.ByShortName = len(l.Items)
			continue
		}
		for _, c := range l.Items {
			r.ByName = append(r.ByName, c.Names...)
		}
	}
	return nil
}

// get fetches url, retrying while the server starts, as a wait strategy
// does.
func get(ctx context.Context, url string) string {
	var last error
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Sprint("error: ", last)
}
