package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuSeconds returns the user+system CPU time of the process so far.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	return float64(u+s) / clockTicks, nil
}

// machineBusy returns the CPU seconds all processes of the machine spent
// so far (user, nice, system, irq, softirq and steal from /proc/stat).
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseUint(f[i], 10, 64)
		busy += n
	}
	return float64(busy) / clockTicks
}

// memKiB returns VmRSS and VmHWM of the process in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var p *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			p = &rss
		case strings.HasPrefix(line, "VmHWM:"):
			p = &hwm
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			*p, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return rss, hwm, sc.Err()
}

// resetHWM resets the process's peak RSS (VmHWM) to its current RSS, so a
// scenario's peak is its own. Reports false when the kernel refuses (it
// needs Linux 4.0 and permission over the process).
func resetHWM(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}

// probe measures one process over a measured window: CPU seconds from
// utime+stime deltas and peak RSS, from VmHWM after a reset and from VmRSS
// sampled every 50 ms (the larger wins).
type probe struct {
	pid      int
	cpu0     float64
	cpu      float64
	hwmReset bool
	mu       sync.Mutex
	peak     int64
	stop     chan struct{}
	done     chan struct{}
}

func newProbe(pid int) *probe { return &probe{pid: pid} }

func (p *probe) start() {
	p.hwmReset = resetHWM(p.pid)
	p.cpu0, _ = cpuSeconds(p.pid)
	p.peak = 0
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _, err := memKiB(p.pid); err == nil {
				p.mu.Lock()
				p.peak = max(p.peak, rss)
				p.mu.Unlock()
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
}

func (p *probe) end() {
	c, _ := cpuSeconds(p.pid)
	p.cpu = c - p.cpu0
	close(p.stop)
	<-p.done
	if rss, hwm, err := memKiB(p.pid); err == nil {
		p.mu.Lock()
		p.peak = max(p.peak, rss)
		if p.hwmReset {
			p.peak = max(p.peak, hwm)
		}
		p.mu.Unlock()
	}
}

// peakMiB returns the peak RSS in MiB.
func (p *probe) peakMiB() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return float64(p.peak) / 1024
}
