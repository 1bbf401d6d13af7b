package dockerapi

import (
	"archive/tar"
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berthnet/berth/internal/engine"
)

// The endpoints behind docker cp, docker top and docker stats.
func (s *Server) ctrMiscRoutes() {
	s.handle("GET /containers/{id}/archive", s.archiveGet)
	s.handle("HEAD /containers/{id}/archive", s.archiveHead)
	s.handle("PUT /containers/{id}/archive", s.archivePut)
	s.handle("GET /containers/{id}/top", s.containerTop)
	s.handle("GET /containers/{id}/stats", s.containerStats)
}

// target is the engine and the path's container.
func (s *Server) target(r *http.Request) (ContainerEngine, *engine.Container, error) {
	e, err := s.engine()
	if err != nil {
		return nil, nil, err
	}
	ref := r.PathValue("id")
	c, err := e.Get(ref)
	if err != nil {
		return nil, nil, classify(err, ref)
	}
	return e, c, nil
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", fmt.Errorf("path is required: %w", ErrInvalid)
	}
	return p, nil
}

// statOf reads the first entry of the tar the engine writes for p: the
// stat Docker sends in X-Docker-Container-Path-Stat.
func statOf(e ContainerEngine, c *engine.Container, p string) (container.PathStat, error) {
	pr, pw := io.Pipe()
	go func() {
		err := e.Copy(engine.CopyEnd{Container: c.Config.ID, Path: p}, engine.CopyEnd{Path: "-"}, engine.CopyOptions{Stdout: pw})
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	h, err := tar.NewReader(pr).Next()
	if err != nil {
		if errors.Is(err, engine.ErrCopyNotFound) || errors.Is(err, io.EOF) {
			//lint:ignore ST1005 Docker's own message, which clients show and match
			return container.PathStat{}, fmt.Errorf("Could not find the file %s in container %s: %w", p, c.Config.Name, ErrNotFound)
		}
		return container.PathStat{}, classify(err, c.Config.Name)
	}
	st := container.PathStat{Name: path.Base(h.Name), Size: h.Size, Mode: h.FileInfo().Mode(), Mtime: h.ModTime, LinkTarget: h.Linkname}
	if p == "/" {
		st.Name = "/"
	}
	return st, nil
}

func setStatHeader(w http.ResponseWriter, st container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

// archiveTarget is the container, path and its stat an archive request
// names.
type archiveTarget struct {
	e  ContainerEngine
	c  *engine.Container
	p  string
	st container.PathStat
}

func (s *Server) archiveTarget(r *http.Request) (a archiveTarget, err error) {
	if a.p, err = archivePath(r); err != nil {
		return a, err
	}
	if a.e, a.c, err = s.target(r); err != nil {
		return a, err
	}
	a.st, err = statOf(a.e, a.c, a.p)
	return a, err
}

func (s *Server) archiveHead(w http.ResponseWriter, r *http.Request) error {
	a, err := s.archiveTarget(r)
	if err != nil {
		return err
	}
	if err := setStatHeader(w, a.st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// archiveGet streams path as a tar (its last element at the top), as
// `docker cp CTR:PATH -` expects.
func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) error {
	a, err := s.archiveTarget(r)
	if err != nil {
		return err
	}
	if err := setStatHeader(w, a.st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	bw := bufio.NewWriterSize(w, 64<<10)
	// The header goes with the first bytes; an error after them can only
	// cut the stream.
	if err := a.e.Copy(engine.CopyEnd{Container: a.c.Config.ID, Path: a.p}, engine.CopyEnd{Path: "-"}, engine.CopyOptions{Stdout: bw}); err != nil {
		s.log.Debug("archive: copy failed", "err", err)
		return nil
	}
	return bw.Flush()
}

// archivePut extracts the request's tar into the directory path.
func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) error {
	a, err := s.archiveTarget(r)
	if err != nil {
		return err
	}
	if !a.st.Mode.IsDir() {
		return fmt.Errorf("extraction point is not a directory: %w", ErrInvalid)
	}
	o := engine.CopyOptions{Stdin: r.Body, Archive: boolQuery(r, "copyUIDGID"), Overwrite: !boolQuery(r, "noOverwriteDirNonDir")}
	if err := a.e.Copy(engine.CopyEnd{Path: "-"}, engine.CopyEnd{Container: a.c.Config.ID, Path: a.p}, o); err != nil {
		return fmt.Errorf("copy into %s: %v: %w", a.p, err, ErrInvalid)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// containerTop lists the container's processes in ps -ef's columns.
func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) error {
	if a := r.URL.Query().Get("ps_args"); a != "" && a != "-ef" {
		return fmt.Errorf("ps_args %q: berth lists processes in ps -ef's columns only: %w", a, ErrNotImplemented)
	}
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	_, procs, err := e.Top(c.Config.ID)
	if err != nil {
		return classify(err, c.Config.Name)
	}
	resp := container.TopResponse{Titles: []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}, Processes: [][]string{}}
	now := time.Now()
	for _, p := range procs {
		cmd := strings.Join(p.Args, " ")
		if cmd == "" {
			cmd = "[" + p.Comm + "]"
		}
		tty := "?"
		if p.TTY != 0 {
			tty = "pts/" + strconv.FormatUint(p.TTY&0xff, 10)
		}
		secs := int(p.CPU.Seconds())
		resp.Processes = append(resp.Processes, []string{
			strconv.Itoa(p.UID), strconv.Itoa(p.Pid), strconv.Itoa(p.PPid), "0",
			now.Add(-p.Elapsed).Format("15:04"), tty,
			fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60), cmd,
		})
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// statsResponse adds the previous sample Docker's clients compute CPU
// percentages from.
type statsResponse struct {
	container.StatsResponse
	PreRead     time.Time          `json:"preread"`
	PreCPUStats container.CPUStats `json:"precpu_stats"`
}

// containerStats samples the container once (stream=false) or every
// second until the client goes or the container stops.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) error {
	e, c, err := s.target(r)
	if err != nil {
		return err
	}
	stream := r.URL.Query().Get("stream") == "" || boolQuery(r, "stream")
	oneShot := boolQuery(r, "one-shot")
	var prev statsResponse
	first := true
	w.Header().Set("Content-Type", "application/json")
	for {
		cur, err := s.sample(e, c)
		if err != nil {
			if first {
				return classify(err, c.Config.Name)
			}
			return nil
		}
		cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
		if first && !oneShot {
			// Docker's first answer carries a previous sample a moment
			// old, so the first CPU percentage is meaningful.
			time.Sleep(100 * time.Millisecond)
			if again, err := s.sample(e, c); err == nil {
				again.PreRead, again.PreCPUStats = cur.Read, cur.CPUStats
				cur = again
			}
		}
		first = false
		if err := writeBody(w, cur); err != nil {
			return nil
		}
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if !stream {
			return nil
		}
		prev = cur
		select {
		case <-r.Context().Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (s *Server) sample(e ContainerEngine, c *engine.Container) (statsResponse, error) {
	st, err := e.Stats(c.Config.ID)
	if err != nil {
		return statsResponse{}, err
	}
	resp := statsResponse{StatsResponse: container.StatsResponse{
		ID: c.Config.ID, Name: "/" + c.Config.Name, OSType: "linux", Read: st.At,
		CPUStats: container.CPUStats{
			CPUUsage:    container.CPUUsage{TotalUsage: st.CPUNanos},
			SystemUsage: systemCPUNanos(),
			OnlineCPUs:  uint32(runtime.NumCPU()),
		},
		MemoryStats: container.MemoryStats{Usage: st.MemUsage, Limit: st.MemLimit},
		Networks:    map[string]container.NetworkStats{"eth0": {RxBytes: st.NetInput, TxBytes: st.NetOutput}},
		PidsStats:   container.PidsStats{Current: st.PIDs},
		BlkioStats: container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
			{Op: "read", Value: st.BlockInput}, {Op: "write", Value: st.BlockOut},
		}},
	}}
	return resp, nil
}

// systemCPUNanos is the host's total CPU time (/proc/stat's cpu line) in
// nanoseconds, Docker's system_cpu_usage.
func systemCPUNanos() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	return ticks * uint64(time.Second) / engine.ClockTicks
}
