package decap

// File is an output file written safely, for the commands that write one
// capture file of their own (vrsniff extract): under a temporary name in
// its directory, put in place by Commit, so that an existing file is only
// ever replaced by a complete one and a run that fails leaves it as it
// was. A symbolic link is followed; an existing file that is not a
// regular one (/dev/null, a FIFO) is written directly.
type File struct{ o *output }

// Create starts writing the file name.
func Create(name string) (*File, error) {
	o, err := createOutput(name, true)
	if err != nil {
		return nil, err
	}
	return &File{o}, nil
}

func (f *File) Write(b []byte) (int, error) { return f.o.Write(b) }

// Commit closes the file and puts it in place.
func (f *File) Commit() error { return f.o.commit() }

// Abort closes and removes the file, leaving whatever was at its name.
func (f *File) Abort() { f.o.abort() }

// SamePath reports whether a and b name one file: the same existing file
// (hard and symbolic links included) or, for a name not yet created, the
// same path once symbolic links are resolved.
func SamePath(a, b string) bool { return samePath(a, b) }
