package password

import "testing"

func TestMeetsOWASPMinimum(t *testing.T) {
	for p, want := range map[Params]bool{
		{MemoryKiB: 47104, Time: 1, Threads: 1}: true,
		{MemoryKiB: 47103, Time: 1, Threads: 1}: false,
		{MemoryKiB: 19456, Time: 2, Threads: 1}: true,
		{MemoryKiB: 19455, Time: 2, Threads: 1}: false,
		{MemoryKiB: 19456, Time: 1, Threads: 1}: false,
		{MemoryKiB: 12288, Time: 3, Threads: 1}: true,
		{MemoryKiB: 12288, Time: 2, Threads: 1}: false,
		{MemoryKiB: 9216, Time: 4, Threads: 1}:  true,
		{MemoryKiB: 7167, Time: 9, Threads: 1}:  false,
		{MemoryKiB: 7168, Time: 5, Threads: 1}:  true,
		{MemoryKiB: 7168, Time: 4, Threads: 1}:  false,
		{MemoryKiB: 65536, Time: 3, Threads: 4}: true,
		{MemoryKiB: 65536, Time: 3, Threads: 0}: false,
		{MemoryKiB: 1024, Time: 1, Threads: 1}:  false,
		{MemoryKiB: 64, Time: 100, Threads: 1}:  false,
	} {
		if got := p.MeetsOWASPMinimum(); got != want {
			t.Errorf("%+v: MeetsOWASPMinimum = %v, want %v", p, got, want)
		}
	}
	if !DefaultParams().MeetsOWASPMinimum() {
		t.Fatal("the defaults are below OWASP's minimum")
	}
}
