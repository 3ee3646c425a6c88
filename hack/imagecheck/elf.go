package main

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"strings"
)

// BinaryWant is what CheckBinary requires of the built binary.
type BinaryWant struct {
	Version   string   // a string the version stamp must have put in the binary
	Forbidden []string // strings that must not appear (build paths, which -trimpath removes)
}

// CheckBinary reads the ELF file at path and returns every way it fails to
// be a static, stripped (no symbols, no DWARF), version-stamped, path-free binary: a program
// interpreter (PT_INTERP) or DT_NEEDED libraries mean it cannot run on a
// base image with no libc; a symbol table means -s was not applied.
func CheckBinary(path string, want BinaryWant) []error {
	f, err := elf.Open(path)
	if err != nil {
		return []error{err}
	}
	defer f.Close()
	var errs []error
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			errs = append(errs, fmt.Errorf("%s has a program interpreter (PT_INTERP): dynamically linked", path))
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		errs = append(errs, fmt.Errorf("%s needs shared libraries %v", path, libs))
	}
	if f.Section(".symtab") != nil {
		errs = append(errs, fmt.Errorf("%s has a symbol table: not stripped (-s)", path))
	}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, ".debug_") || strings.HasPrefix(s.Name, ".zdebug_") {
			errs = append(errs, fmt.Errorf("%s has DWARF section %s: not built with -w", path, s.Name))
			break
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return append(errs, err)
	}
	if want.Version != "" && !bytes.Contains(data, []byte(want.Version)) {
		errs = append(errs, fmt.Errorf("%s does not contain the version %q: -X main.version had no effect (is there a `var version string` in package main?)", path, want.Version))
	}
	for _, s := range want.Forbidden {
		if s != "" && bytes.Contains(data, []byte(s)) {
			errs = append(errs, fmt.Errorf("%s contains the build path %q: not built with -trimpath", path, s))
		}
	}
	return errs
}
