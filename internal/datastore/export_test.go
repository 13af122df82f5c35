package datastore

// SetWatchHook makes every later Watch of s call afterSync(rev) after each
// EventInSync and before following live changes from rev+1: a test can
// block there to change and compact the store behind the watcher's back.
func SetWatchHook(s Store, afterSync func(rev int64)) {
	switch st := s.(type) {
	case *etcdStore:
		st.hooks.afterSync = afterSync
	case *memStore:
		st.hooks.afterSync = afterSync
	default:
		panic("SetWatchHook: unknown store type")
	}
}

// PlaintextRefused reports whether RunEmbedded refuses u as a listener.
func PlaintextRefused(insecure bool, u string) bool {
	us, err := parseURLs("x", []string{u}, nil)
	if err != nil {
		panic(err)
	}
	return checkPlaintext(insecure, us) != nil
}
