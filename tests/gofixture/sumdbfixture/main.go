// Command sumdbfixture is bulwark's test upstream for Go modules: a GOPROXY
// and a Go checksum database in one HTTP server on loopback, built only from
// Go's own code (golang.org/x/mod/zip, sumdb, sumdb/note, sumdb/tlog,
// sumdb/dirhash). The Rust tests build it in GOPATH mode
// (tests/support/gofixture.rs) and start it once per scenario.
//
// Modules are read from -modules DIR, laid out like the module cache:
// DIR/<module path>@<version>/ holds go.mod and the sources. Every module
// present at start-up is logged in (path, version) order, so a restart over
// the same directory with the same key rebuilds the same tree; a module added
// later is logged when it is first looked up.
//
// Routes:
//
//	/<escaped module>/@v/list, @v/<version>.info|.mod|.zip, /@latest
//	/sumdb/<name>/supported, /latest, /lookup/<module>@<version>, /tile/...
//	/_stats?path=P  how many requests for path P it has answered
//
// It listens on -listen (default 127.0.0.1:0); a test restarts a database
// in place by passing the address it had. On start it prints, one per line, "addr HOST:PORT", "vkey VERIFIER-KEY",
// "name NAME" and "ready"; it exits when its standard input closes.
//
// Misbehaviour on purpose (for the attack tests), each a flag:
//
//	-serve-altered-zip m@v,...  log the true zip hash, serve a zip with one more file
//	-serve-altered-mod m@v,...  log the true go.mod hash, serve an altered go.mod
//	-log-altered m@v,...        log and serve the altered zip and go.mod: restarted
//	                            with the same -key this is a fork of the database
//	-tree-size N                sign and serve the tree of the first N records (replay)
//	-other-key                  sign trees with another key of the same name
//	-tamper-tile hash|data      alter every hash tile or data tile served
//	-proxy-status CODE          answer every GOPROXY route with this status (the usual
//	                            body, or "upstream's own body" for 4xx/5xx)
//	-sumdb-status CODE          the same for /latest, /lookup and /tile
//	-bad-metadata               serve a list, .info and @latest of the wrong shape
//	-serve-prefixed-zip m@v,... log the true zip hash, serve the zip behind a prefix of
//	                            other local entries (what a reader from the start sees)
//	-lookup-tree-size N         /lookup answers carry the signed tree of the first N
//	                            records (a lagging database)
//	-lookup-tree-forged         with -lookup-tree-size: that tree's hash is forged
//	-unknown-status CODE        answer GOPROXY requests for unknown module versions with
//	                            this status instead of 404
//	-extra-signatures FILE      append FILE's lines (if it exists) to every signed tree
//	                            note: witness cosignatures a test made for the tree
package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	modzip "golang.org/x/mod/zip"
)

var (
	listen          = flag.String("listen", "127.0.0.1:0", "address to listen on (reuse a port to restart in place)")
	modulesDir      = flag.String("modules", "", "directory of module sources: DIR/<path>@<version>/")
	keyFile         = flag.String("key", "", "signer key file (skey and vkey lines); created if missing")
	dbName          = flag.String("name", "sumdb.bulwark.test", "database name for a newly created key")
	treeSize        = flag.Int64("tree-size", -1, "serve the tree of this many records instead of all (replay)")
	otherKey        = flag.Bool("other-key", false, "sign trees with another key of the same name")
	tamperTile      = flag.String("tamper-tile", "", "alter served tiles: hash or data")
	serveAlteredZip = flag.String("serve-altered-zip", "", "comma-separated module@version: serve an altered zip")
	serveAlteredMod = flag.String("serve-altered-mod", "", "comma-separated module@version: serve an altered go.mod")
	logAltered      = flag.String("log-altered", "", "comma-separated module@version: log and serve altered content")
	proxyStatus     = flag.Int("proxy-status", 0, "answer GOPROXY routes with this status")
	sumdbStatus     = flag.Int("sumdb-status", 0, "answer /latest, /lookup and /tile with this status")
	badMetadata     = flag.Bool("bad-metadata", false, "serve list, .info and @latest of the wrong shape")
	servePrefixZip  = flag.String("serve-prefixed-zip", "", "comma-separated module@version: serve the zip behind a prefix")
	lookupTreeSize  = flag.Int64("lookup-tree-size", -1, "lookup answers carry the tree of this many records")
	lookupForged    = flag.Bool("lookup-tree-forged", false, "with -lookup-tree-size: forge that tree's hash")
	unknownStatus   = flag.Int("unknown-status", 0, "status for GOPROXY requests of unknown module versions")
	extraSigs       = flag.String("extra-signatures", "", "file of signature lines appended to every tree note")
)

// modFiles is one module version as served: its zip and go.mod, and the
// altered variants.
type modFiles struct {
	zip, mod       []byte
	altZip, altMod []byte
}

// fixture is the module store, the GOPROXY and the sumdb.ServerOps.
type fixture struct {
	dir    string
	signer note.Signer
	alter  map[string]map[string]bool // flag name -> set of module@version

	mu      sync.Mutex
	mods    map[string]*modFiles // module@version -> files
	records [][]byte
	hashes  []tlog.Hash // stored hashes (tlog.StoredHashes layout)
	lookup  map[string]int64
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("sumdbfixture: ")
	flag.Parse()
	if *modulesDir == "" || *keyFile == "" {
		log.Fatal("usage: sumdbfixture -modules DIR -key FILE [flags]")
	}
	skey, vkey, err := loadOrCreateKey(*keyFile, *dbName)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		log.Fatal(err)
	}
	if *otherKey {
		other, _, err := note.GenerateKey(rand.Reader, signer.Name())
		if err != nil {
			log.Fatal(err)
		}
		if signer, err = note.NewSigner(other); err != nil {
			log.Fatal(err)
		}
	}
	f := &fixture{
		dir:    *modulesDir,
		signer: signer,
		alter: map[string]map[string]bool{
			"serve-zip": splitSet(*serveAlteredZip),
			"serve-mod": splitSet(*serveAlteredMod),
			"log":       splitSet(*logAltered),
			"prefix":    splitSet(*servePrefixZip),
		},
		mods:   map[string]*modFiles{},
		lookup: map[string]int64{},
	}
	all, err := f.scan()
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range all {
		if _, err := f.Lookup(context.Background(), m); err != nil {
			log.Fatal(err)
		}
	}

	name := signer.Name()
	mux := http.NewServeMux()
	db := sumdb.NewServer(f)
	prefix := "/sumdb/" + name
	mux.Handle(prefix+"/", http.StripPrefix(prefix, withStatus(*sumdbStatus, f.lagLookups(tamper(db)))))
	mux.HandleFunc(prefix+"/supported", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/", withStatus(*proxyStatus, http.HandlerFunc(f.serveProxy)))

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("addr %s\nvkey %s\nname %s\nready\n", ln.Addr(), vkey, name)
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	log.Fatal(http.Serve(ln, counting(mux)))
}

// counts is the number of requests per URL path, served at
// /_stats?path=P (the count for P, as a decimal number) so tests can
// check how often a proxy in front asked for something.
var counts = struct {
	sync.Mutex
	n map[string]int
}{n: map[string]int{}}

func counting(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_stats" {
			counts.Lock()
			n := counts.n[r.URL.Query().Get("path")]
			counts.Unlock()
			fmt.Fprintf(w, "%d\n", n)
			return
		}
		counts.Lock()
		counts.n[r.URL.Path]++
		counts.Unlock()
		h.ServeHTTP(w, r)
	})
}

// loadOrCreateKey reads "skey\nvkey\n" from file, or generates a key pair
// with note.GenerateKey and writes it there.
func loadOrCreateKey(file, name string) (skey, vkey string, err error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		skey, vkey, err = note.GenerateKey(rand.Reader, name)
		if err != nil {
			return "", "", err
		}
		return skey, vkey, os.WriteFile(file, []byte(skey+"\n"+vkey+"\n"), 0o600)
	}
	if err != nil {
		return "", "", err
	}
	lines := strings.Fields(string(data))
	if len(lines) != 2 {
		return "", "", fmt.Errorf("%s: want two lines (skey, vkey)", file)
	}
	return lines[0], lines[1], nil
}

func splitSet(list string) map[string]bool {
	set := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		if s != "" {
			set[s] = true
		}
	}
	return set
}

// scan lists the module versions under f.dir in (path, version) order.
func (f *fixture) scan() ([]module.Version, error) {
	var list []module.Version
	err := filepath.WalkDir(f.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || !strings.Contains(d.Name(), "@") {
			return err
		}
		rel, err := filepath.Rel(f.dir, p)
		if err != nil {
			return err
		}
		i := strings.LastIndex(rel, "@")
		m := module.Version{Path: filepath.ToSlash(rel[:i]), Version: rel[i+1:]}
		if err := module.Check(m.Path, m.Version); err != nil {
			return err
		}
		list = append(list, m)
		return filepath.SkipDir
	})
	module.Sort(list)
	return list, err
}

// files returns module m's zip and go.mod (made once), or fs.ErrNotExist.
func (f *fixture) files(m module.Version) (*modFiles, error) {
	key := m.String()
	f.mu.Lock()
	mf := f.mods[key]
	f.mu.Unlock()
	if mf != nil {
		return mf, nil
	}
	if err := module.Check(m.Path, m.Version); err != nil {
		return nil, fs.ErrNotExist
	}
	src := filepath.Join(f.dir, filepath.FromSlash(m.Path)+"@"+m.Version)
	if st, err := os.Stat(src); err != nil || !st.IsDir() {
		return nil, fs.ErrNotExist
	}
	mod, err := os.ReadFile(filepath.Join(src, "go.mod"))
	if err != nil {
		return nil, err
	}
	var zbuf bytes.Buffer
	if err := modzip.CreateFromDir(&zbuf, m, src); err != nil {
		return nil, err
	}
	altZip, err := addFile(zbuf.Bytes(), key+"/altered.txt", "altered after logging\n")
	if err != nil {
		return nil, err
	}
	mf = &modFiles{
		zip:    zbuf.Bytes(),
		mod:    mod,
		altZip: altZip,
		altMod: append(append([]byte(nil), mod...), "// altered\n"...),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if prev := f.mods[key]; prev != nil {
		return prev, nil
	}
	f.mods[key] = mf
	return mf, nil
}

// addFile returns a copy of zip archive z with one more file.
func addFile(z []byte, name, content string) ([]byte, error) {
	r, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	w := zip.NewWriter(&out)
	for _, file := range r.File {
		if err := w.Copy(file); err != nil {
			return nil, err
		}
	}
	fw, err := w.Create(name)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(fw, content); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// served returns the zip and go.mod that the proxy hands out for m.
func (f *fixture) served(m module.Version, mf *modFiles) (zipData, mod []byte) {
	key := m.String()
	zipData, mod = mf.zip, mf.mod
	if f.alter["log"][key] || f.alter["serve-zip"][key] {
		zipData = mf.altZip
	}
	if f.alter["prefix"][key] {
		zipData = prefixed(mf.zip, key)
	}
	if f.alter["log"][key] || f.alter["serve-mod"][key] {
		mod = mf.altMod
	}
	return zipData, mod
}

// gosum returns the go.sum lines that the database logs for m.
func (f *fixture) gosum(m module.Version, mf *modFiles) ([]byte, error) {
	zipData, mod := mf.zip, mf.mod
	if f.alter["log"][m.String()] {
		zipData, mod = mf.altZip, mf.altMod
	}
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		return nil, err
	}
	var names []string
	byName := map[string]*zip.File{}
	for _, file := range zr.File {
		names = append(names, file.Name)
		byName[file.Name] = file
	}
	zipHash, err := dirhash.Hash1(names, func(name string) (io.ReadCloser, error) {
		return byName[name].Open()
	})
	if err != nil {
		return nil, err
	}
	modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(mod)), nil
	})
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n",
		m.Path, m.Version, zipHash, m.Path, m.Version, modHash)), nil
}

// Signed implements sumdb.ServerOps: the signed tree note.
func (f *fixture) Signed(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := int64(len(f.records))
	if *treeSize >= 0 && *treeSize < n {
		n = *treeSize
	}
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(f.readHashes))
	if err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: h}))}, f.signer)
	if err != nil || *extraSigs == "" {
		return signed, err
	}
	extra, err := os.ReadFile(*extraSigs)
	if errors.Is(err, fs.ErrNotExist) {
		return signed, nil
	}
	return append(signed, extra...), err
}

func (f *fixture) readHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(f.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = f.hashes[x]
	}
	return out, nil
}

// ReadRecords implements sumdb.ServerOps.
func (f *fixture) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id < 0 || n < 0 || id+n > int64(len(f.records)) {
		return nil, fs.ErrNotExist
	}
	return f.records[id : id+n], nil
}

// Lookup implements sumdb.ServerOps: the record id of m, logging m first
// if it is in the module directory but not yet in the log.
func (f *fixture) Lookup(ctx context.Context, m module.Version) (int64, error) {
	key := m.String()
	f.mu.Lock()
	id, ok := f.lookup[key]
	f.mu.Unlock()
	if ok {
		return id, nil
	}
	mf, err := f.files(m)
	if err != nil {
		return 0, err
	}
	rec, err := f.gosum(m, mf)
	if err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.lookup[key]; ok {
		return id, nil
	}
	id = int64(len(f.records))
	hashes, err := tlog.StoredHashes(id, rec, tlog.HashReaderFunc(f.readHashes))
	if err != nil {
		return 0, err
	}
	f.records = append(f.records, rec)
	f.hashes = append(f.hashes, hashes...)
	f.lookup[key] = id
	return id, nil
}

// ReadTileData implements sumdb.ServerOps (hash tiles only).
func (f *fixture) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return tlog.ReadTileData(t, tlog.HashReaderFunc(f.readHashes))
}

// tamper wraps the sumdb handler to alter tiles in transit when asked.
func tamper(h http.Handler) http.Handler {
	if *tamperTile == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isData := strings.Contains(r.URL.Path, "/data/")
		if !strings.HasPrefix(r.URL.Path, "/tile/") || isData != (*tamperTile == "data") {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		if rec.code == http.StatusOK && len(body) > 0 {
			if i := bytes.Index(body, []byte("h1:")); isData && i >= 0 && i+3 < len(body) {
				body[i+3] ^= 'A' ^ 'B' // another base64 letter: still well-formed
			} else {
				body[len(body)-1] ^= 1
			}
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
		w.Write(body)
	})
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// serveProxy serves the GOPROXY protocol.
func (f *fixture) serveProxy(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	var escPath, what string
	if i := strings.Index(p, "/@v/"); i >= 0 {
		escPath, what = p[:i], p[i+len("/@v/"):]
	} else if strings.HasSuffix(p, "/@latest") {
		escPath, what = strings.TrimSuffix(p, "/@latest"), "@latest"
	} else {
		http.NotFound(w, r)
		return
	}
	path, err := module.UnescapePath(escPath)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	versions, err := f.versions(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if what == "list" || what == "@latest" || strings.HasSuffix(what, ".info") {
		if badMeta(w, what) {
			return
		}
	}
	if what == "list" {
		for _, v := range versions {
			fmt.Fprintln(w, v)
		}
		return
	}
	if what == "@latest" {
		if len(versions) == 0 {
			http.NotFound(w, r)
			return
		}
		writeInfo(w, versions[len(versions)-1])
		return
	}
	ext := filepath.Ext(what)
	vers, err := module.UnescapeVersion(strings.TrimSuffix(what, ext))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	m := module.Version{Path: path, Version: vers}
	mf, err := f.files(m)
	if err != nil {
		if *unknownStatus != 0 {
			http.Error(w, "unknown version", *unknownStatus)
			return
		}
		http.NotFound(w, r)
		return
	}
	zipData, mod := f.served(m, mf)
	switch ext {
	case ".info":
		writeInfo(w, vers)
	case ".mod":
		w.Write(mod)
	case ".zip":
		w.Header().Set("Content-Type", "application/zip")
		w.Write(zipData)
	default:
		http.NotFound(w, r)
	}
}

// versions lists the versions of module path in the directory, in semver order.
func (f *fixture) versions(path string) ([]string, error) {
	all, err := f.scan()
	var list []string
	for _, m := range all {
		if m.Path == path {
			list = append(list, m.Version)
		}
	}
	sort.Slice(list, func(i, j int) bool { return semver.Compare(list[i], list[j]) < 0 })
	return list, err
}

func writeInfo(w http.ResponseWriter, vers string) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"Version": vers, "Time": "2026-01-02T03:04:05Z"})
}

// prefixed returns z behind the local entries of another zip (one file,
// "<key>/evil.go"), offsets unchanged: readers that start from the end
// record (Go's archive/zip, most libraries) skip the prefix and see z,
// a reader going from the start sees the other file first.
func prefixed(z []byte, key string) []byte {
	var other bytes.Buffer
	w := zip.NewWriter(&other)
	fw, err := w.Create(key + "/evil.go")
	if err == nil {
		io.WriteString(fw, "package evil\n")
	}
	w.Close()
	o := other.Bytes()
	// Keep only the local entries: cut at the central directory.
	if i := bytes.Index(o, []byte("PK\x01\x02")); i >= 0 {
		o = o[:i]
	}
	return append(append([]byte(nil), o...), z...)
}

// withStatus answers with status code instead of 200 when code is set:
// the usual body for a 2xx or 3xx, an identifiable body of the upstream's
// own for a 4xx or 5xx (which a proxy in front must not pass on).
func withStatus(code int, h http.Handler) http.Handler {
	if code == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/supported") {
			h.ServeHTTP(w, r)
			return
		}
		if code >= 400 {
			w.WriteHeader(code)
			io.WriteString(w, "upstream's own body\n")
			return
		}
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(code)
		w.Write(rec.body.Bytes())
	})
}

// lagLookups replaces the signed tree in /lookup answers with the tree of
// the first -lookup-tree-size records (its hash forged with
// -lookup-tree-forged).
func (f *fixture) lagLookups(h http.Handler) http.Handler {
	if *lookupTreeSize < 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/lookup/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(rec, r)
		body := rec.body.Bytes()
		// <id>\n<record text>\n\n<note>: the record ends at the first blank line.
		i := bytes.Index(body, []byte("\n\n"))
		if rec.code != http.StatusOK || i < 0 {
			w.WriteHeader(rec.code)
			w.Write(body)
			return
		}
		f.mu.Lock()
		n := *lookupTreeSize
		th, err := tlog.TreeHash(n, tlog.HashReaderFunc(f.readHashes))
		f.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if *lookupForged {
			th[0] ^= 1
		}
		note, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: th}))}, f.signer)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.Write(append(append([]byte(nil), body[:i+2]...), note...))
	})
}

// meta writes the answer to a list, .info or @latest request: the true
// one, or (with -bad-metadata) one of the wrong shape.
func badMeta(w http.ResponseWriter, what string) bool {
	if !*badMetadata {
		return false
	}
	switch what {
	case "list":
		io.WriteString(w, "v1.0.0\n<script>alert(1)</script>\n")
	case "@latest":
		io.WriteString(w, "not json\n")
	default:
		io.WriteString(w, `{"Version":"master","Time":"yesterday"}`)
	}
	return true
}
