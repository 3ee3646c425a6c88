package proxy

import "fmt"

// h2Defaults applies the HTTP/2 defaults of d to o's zero fields and
// checks the HTTP/2 settings.
func (o *Options) h2Defaults(d Options) error {
	if o.H2MaxConcurrentStreams <= 0 {
		o.H2MaxConcurrentStreams = d.H2MaxConcurrentStreams
	}
	o.H2MaxConcurrentStreams = min(o.H2MaxConcurrentStreams, o.MaxStreams)
	if o.H2InitialWindowSize <= 0 {
		o.H2InitialWindowSize = o.BufferSize
	}
	if o.H2MaxFrameSize <= 0 {
		o.H2MaxFrameSize = d.H2MaxFrameSize
	}
	if o.H2MaxHeaderListSize <= 0 {
		o.H2MaxHeaderListSize = d.H2MaxHeaderListSize
	}
	switch {
	case o.H2InitialWindowSize > o.BufferSize:
		return fmt.Errorf("proxy: HTTP/2 initial window %d must be at most the buffer size %d", o.H2InitialWindowSize, o.BufferSize)
	case o.H2MaxFrameSize < 16384 || o.H2MaxFrameSize > 1<<24-1:
		return fmt.Errorf("proxy: HTTP/2 max frame size %d must be between 16384 and 16777215", o.H2MaxFrameSize)
	}
	return nil
}
