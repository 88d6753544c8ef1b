package ring

// fileList is a doubly linked list of open files through file.newer and
// file.older, most recently used first: finding the least recently used
// file and marking one used are O(1), without allocating.
type fileList struct {
	head, tail *file
	n          int
}

func (l *fileList) pushFront(f *file) {
	f.older, f.newer = l.head, nil
	if l.head != nil {
		l.head.newer = f
	} else {
		l.tail = f
	}
	l.head = f
	l.n++
}

func (l *fileList) remove(f *file) {
	if f.newer != nil {
		f.newer.older = f.older
	} else {
		l.head = f.older
	}
	if f.older != nil {
		f.older.newer = f.newer
	} else {
		l.tail = f.newer
	}
	f.older, f.newer = nil, nil
	l.n--
}

// touch marks f, in the list, as the most recently used.
func (l *fileList) touch(f *file) {
	if l.head != f {
		l.remove(f)
		l.pushFront(f)
	}
}
