package dockerapi

import (
	"net/http"
	"runtime"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
)

// ping answers /_ping: "OK" and the version headers clients negotiate
// with.
func (s *Server) ping(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte("OK"))
	}
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	hi, err := s.b.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Version:       hi.Version,
		APIVersion:    MaxVersion,
		MinAPIVersion: MinVersion,
		Os:            hi.OS,
		Arch:          hi.Arch,
		GoVersion:     runtime.Version(),
		KernelVersion: hi.KernelVersion,
		Components: []system.ComponentVersion{{
			Name: "Engine", Version: hi.Version,
			Details: map[string]string{"ApiVersion": MaxVersion, "MinAPIVersion": MinVersion, "Os": hi.OS, "Arch": hi.Arch, "KernelVersion": hi.KernelVersion},
		}},
	})
	return nil
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) error {
	hi, err := s.b.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, system.Info{
		ID:                 hi.Name,
		Containers:         hi.Containers,
		ContainersRunning:  hi.Running,
		ContainersPaused:   hi.Paused,
		ContainersStopped:  hi.Stopped,
		Images:             hi.Images,
		Driver:             "overlay",
		DriverStatus:       [][2]string{},
		Plugins:            system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "ipvlan", "macvlan", "null"}, Log: []string{"k8s-file"}},
		MemoryLimit:        true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		PidsLimit:          true,
		IPv4Forwarding:     true,
		NGoroutines:        runtime.NumGoroutine(),
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "k8s-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      "2",
		KernelVersion:      hi.KernelVersion,
		OperatingSystem:    hi.OS,
		OSType:             "linux",
		Architecture:       hi.Arch,
		IndexServerAddress: "https://index.docker.io/v1/",
		RegistryConfig:     &registry.ServiceConfig{IndexConfigs: map[string]*registry.IndexInfo{}},
		NCPU:               hi.NCPU,
		MemTotal:           hi.MemTotal,
		DockerRootDir:      hi.Root,
		Name:               hi.Name,
		Labels:             []string{},
		ServerVersion:      hi.Version,
		Runtimes:           map[string]system.RuntimeWithStatus{"runc": {Runtime: system.Runtime{Path: "runc"}}},
		DefaultRuntime:     "runc",
		SecurityOptions:    rootlessOption(hi.Rootless),
		Warnings:           []string{},
	})
	return nil
}

func rootlessOption(rootless bool) []string {
	if rootless {
		return []string{"name=rootless"}
	}
	return []string{}
}
