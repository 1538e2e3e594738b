package predictor

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

type csvCase struct {
	name string
	body []byte
}

// goldenBodies are the request bodies of every golden exchange that carries one inline
// or in a file (generated bodies are left out).
func goldenBodies(t *testing.T) []csvCase {
	t.Helper()
	needGolden(t)
	var out []csvCase
	err := filepath.WalkDir(goldenDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(path) != ".json" || strings.Contains(path, "/models/") {
			return err
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var c struct {
			Request struct {
				Body       *string `json:"body"`
				BodyBase64 *string `json:"body_base64"`
				BodyFile   *string `json:"body_file"`
			} `json:"request"`
		}
		if json.Unmarshal(raw, &c) != nil {
			return nil // index.json and other non-exchange files
		}
		var body []byte
		switch r := c.Request; {
		case r.Body != nil:
			body = []byte(*r.Body)
		case r.BodyBase64 != nil:
			if body, err = base64.StdEncoding.DecodeString(*r.BodyBase64); err != nil {
				return err
			}
		case r.BodyFile != nil:
			if body, err = os.ReadFile(filepath.Join(goldenDir, *r.BodyFile)); err != nil {
				return err
			}
		default:
			return nil
		}
		rel, _ := filepath.Rel(goldenDir, path)
		out = append(out, csvCase{"golden/" + rel, body})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dataCSVs are ../shared/data/csv/*.csv and the golden models' request CSVs.
func dataCSVs(t *testing.T) []csvCase {
	t.Helper()
	var out []csvCase
	for _, pattern := range []string{
		filepath.Join(goldenDir, "..", "data", "csv", "*.csv"),
		filepath.Join(goldenDir, "models", "*", "requests", "*.csv"),
	} {
		paths, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(filepath.Join(goldenDir, ".."), p)
			out = append(out, csvCase{rel, b})
		}
	}
	return out
}

// edgeCases are the rules the parser claims, one or two bodies each.
var edgeCases = []string{
	"a,b\n1,2\n", "a,b\r\n1,2\r\n", "a,b\n1,2", "\xef\xbb\xbfa,b\n1,2\n", "\xef\xbb\xbf\"a\",b\n1,2\n",
	"a,b\n\n1,2\n\n\n3,4\n", "\n\na,b\n1,2\n", "a,b,\n1,2,\n", "a,,c\n1,2,3\n", ",\n1,2\n",
	"a,a,a.1,a\n1,2,3,4\n", "a,Unnamed: 1,\n1,2,3\n", "\"a,b\",\"c\"\"d\"\n1,2\n",
	"a,b\n1,NA\n2,3\n", "a\n1\n\n2\n", "a\n1\n2\n", "a\n\"\"\n1\n", "a,b\n,\n1,2\n",
	"x\nTrue\nFALSE\ntrue\n", "x\nTrue\n\"\"\n", "x\ntRuE\nfalse\n", "x\nTrue\n1\n", "x\nyes\nno\n",
	"x\n1\n2.5\n", "x\n1e5\n1E-05\n", "x\n.5\n5.\n", "x\n-0.0\n+1.5\n", "x\n-0\n+7\n007\n",
	"x\ninf\n-Infinity\n+INF\n", "x\nNAN\n1\n", "x\nNone\n1\n", "x\n1e\n", "x\n1.2.3\n",
	"x\n9223372036854775807\n-9223372036854775808\n", "x\n9223372036854775808\n",
	"x\n12345678901234567890\n", "x\n0.1\n0.2\n0.3\n", "x\n123456789012345678\n1.5\n",
	"x\n0.000000000000000000123\n", "x\n1e22\n1e23\n", "x\n1e-300\n", "x\n9007199254740993.0\n",
	"x,y\n\"1\",\"a\"\n\"2\",\"b,c\"\n", "x\n\"line\nbreak\"\n", "x\n\"line\r\nbreak\"\n",
	"x\n a\n", "x\na \n", "x\n\"a\"b\n", "x\na\"b\n", "x\n1\r2\n", "x,y\n1\n", "x,y\n1,2,3\n",
	"x\n#N/A\n-1.#IND\n<NA>\nn/a\nnull\nNULL\n", "x,y\n1,é\n2,日本\n", "x\n\"NA\"\n1\n",
	"NA,nan\n1,2\n", "x\n", "x,y\n", "x\n1\n2\n3\n\n", "a,b\n\"1\"\"\",2\n", "\"\"\n1\n",
	"x\n1_000\n", "x\n0x10\n", "x\n1,000\n", "x\n+\n", "x\n-\n", "x\n.\n", "x\ne5\n",
	"x\n1e400\n", "x\n9e308\n1\n", "x\n1e308\n", "x\n1e-400\n", "x\n-1e-700\n", "x\n1e-320\n",
	"x\n4.9406564584124654e-324\n", "x\n1.7976931348623157e308\n", "x\n9223372036854775808x\n",
	"x\n0.30000000000000004441\n", "x\n123456789.123456789123\n", "x\n1e+\n", "x\n1e-\n",
	"x\n1e1234567890\n", "x\n00000000000000000000001.5\n", "x\n-0\n1.5\n", "x\n-\n1\n",
	",,a,\n1,2,3,4\n", "a,,a,\n1,2,3,4\n", "Unnamed: 1,\n1,2\n", "a.1,a,a\n1,2,3\n", ",Unnamed: 0\n1,2\n", "x,x,x\n1,2,3\n",
}

// generated builds n random CSVs mixing the dtypes, NA strings, quoting and layout
// variations the parser handles, and some it does not.
func generated(rng *rand.Rand, n int) []csvCase {
	out := make([]csvCase, n)
	for i := range out {
		out[i] = csvCase{"generated/" + strconv.Itoa(i), randomCSV(rng)}
	}
	return out
}

var (
	naTokens   = []string{"", "NA", "nan", "NaN", "null", "NULL", "#N/A", "N/A", "<NA>", "-nan", "n/a"}
	wordTokens = []string{"a", "hello", "x y", "é", "日本", "None", "NAN", "True", "1a", "-", "a,b",
		"say \"hi\"", "two\nlines", "Infinity", "1.5.2", "#", "'q'", "\t", "  ", "0x1F"}
	nameTokens = []string{"a", "b", "a", "", "a.1", "Unnamed: 0", "x y", "\"q\"", "NA", "é", "1"}
)

func randomCell(rng *rand.Rand, kind int) string {
	if rng.Intn(12) == 0 {
		return naTokens[rng.Intn(len(naTokens))]
	}
	switch kind {
	case 0: // integers
		v := rng.Int63n(1 << uint(rng.Intn(62)+1))
		s := strconv.FormatInt(v, 10)
		switch rng.Intn(8) {
		case 0:
			s = "-" + s
		case 1:
			s = "+" + s
		case 2:
			s = "00" + s
		}
		return s
	case 1: // floats written many ways
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) || rng.Intn(2) == 0 {
			f = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.Intn(20)-10))
		}
		switch rng.Intn(6) {
		case 0:
			return strconv.FormatFloat(f, 'g', -1, 64)
		case 1:
			return strconv.FormatFloat(f, 'f', rng.Intn(18), 64)
		case 2:
			return strconv.FormatFloat(f, 'e', rng.Intn(17), 64)
		case 3:
			return strconv.FormatFloat(f, 'E', -1, 64)
		case 4:
			return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
		default:
			return strconv.Itoa(rng.Intn(1000)) + "." + strconv.Itoa(rng.Intn(1000))
		}
	case 2: // booleans
		return []string{"True", "False", "TRUE", "false", "tRUE", "FaLsE"}[rng.Intn(6)]
	}
	return wordTokens[rng.Intn(len(wordTokens))]
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") || (s != "" && rand.Intn(10) == 0) {
		return "\"" + strings.ReplaceAll(s, "\"", "\"\"") + "\""
	}
	return s
}

func randomCSV(rng *rand.Rand) []byte {
	cols := 1 + rng.Intn(6)
	rows := 1 + rng.Intn(12)
	kinds := make([]int, cols)
	for j := range kinds {
		kinds[j] = rng.Intn(4)
	}
	eol := "\n"
	if rng.Intn(4) == 0 {
		eol = "\r\n"
	}
	trailing := rng.Intn(8) == 0
	var b strings.Builder
	if rng.Intn(10) == 0 {
		b.WriteString("\xef\xbb\xbf")
	}
	line := func(cells []string) {
		for j, c := range cells {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(csvField(c))
		}
		if trailing {
			b.WriteByte(',')
		}
		b.WriteString(eol)
		if rng.Intn(15) == 0 {
			b.WriteString(eol) // a blank line
		}
	}
	header := make([]string, cols)
	for j := range header {
		header[j] = nameTokens[rng.Intn(len(nameTokens))]
		if rng.Intn(2) == 0 {
			header[j] += strconv.Itoa(j)
		}
	}
	line(header)
	for i := 0; i < rows; i++ {
		cells := make([]string, cols)
		for j := range cells {
			kind := kinds[j]
			if rng.Intn(20) == 0 {
				kind = rng.Intn(4) // a stray value of another kind
			}
			cells[j] = randomCell(rng, kind)
		}
		line(cells)
	}
	s := b.String()
	if rng.Intn(5) == 0 {
		s = strings.TrimSuffix(s, eol)
	}
	return []byte(s)
}

// mutate changes a few bytes of seed, favouring the bytes CSV syntax turns on.
func mutate(rng *rand.Rand, seed []byte) []byte {
	const alphabet = ",\"\n\r .eE+-0123456789aNTFtrue#/\xef"
	b := append([]byte(nil), seed...)
	for k := 1 + rng.Intn(3); k > 0; k-- {
		c := alphabet[rng.Intn(len(alphabet))]
		p := 0
		if len(b) > 0 {
			p = rng.Intn(len(b))
		}
		switch rng.Intn(3) {
		case 0:
			b = append(b[:p], append([]byte{c}, b[p:]...)...)
		case 1:
			if len(b) > 0 {
				b = append(b[:p], b[p+1:]...)
			}
		default:
			if len(b) > 0 {
				b[p] = c
			}
		}
	}
	return b
}

var columnPrefix = regexp.MustCompile(`^column \d+: `)

func reportReasons(t *testing.T, what string, total, handled int, reasons map[string]int) {
	t.Helper()
	merged := map[string]int{}
	for k, n := range reasons {
		merged[columnPrefix.ReplaceAllString(k, "column N: ")] += n
	}
	reasons = merged
	keys := make([]string, 0, len(reasons))
	for k := range reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t.Logf("%s: %d cases, %d on the fast path, %d fall back", what, total, handled, total-handled)
	for _, k := range keys {
		t.Logf("  fallback %-50q %d", k, reasons[k])
	}
}

// TestFastCSVMatchesPandas is the proof of equality: every case the Go parser handles
// must give the very frame pandas reads.
func TestFastCSVMatchesPandas(t *testing.T) {
	o := startOracle(t)
	corpus := append(goldenBodies(t), dataCSVs(t)...)
	handled, reasons := checkCases(t, o, corpus)
	reportReasons(t, "corpus (golden bodies + data CSVs)", len(corpus), handled, reasons)
	if handled == 0 {
		t.Error("no corpus file took the fast path")
	}

	var edges []csvCase
	for i, s := range edgeCases {
		edges = append(edges, csvCase{"edge/" + strconv.Itoa(i), []byte(s)})
	}
	handled, reasons = checkCases(t, o, edges)
	reportReasons(t, "edge cases", len(edges), handled, reasons)

	rng := rand.New(rand.NewSource(1))
	gen := generated(rng, 1500)
	handled, reasons = checkCases(t, o, gen)
	reportReasons(t, "generated", len(gen), handled, reasons)
}

// TestFastCSVMutationsMatchPandas is a bounded differential fuzz run: mutations of the
// small corpus files, edge cases and generated bodies, each compared with pandas.
func TestFastCSVMutationsMatchPandas(t *testing.T) {
	o := startOracle(t)
	var seeds [][]byte
	for _, s := range edgeCases {
		seeds = append(seeds, []byte(s))
	}
	rng := rand.New(rand.NewSource(2))
	for _, c := range generated(rng, 200) {
		seeds = append(seeds, c.body)
	}
	for _, c := range dataCSVs(t) {
		if len(c.body) < 4096 {
			seeds = append(seeds, c.body)
		}
	}
	var cases []csvCase
	for i := 0; i < 3000; i++ {
		cases = append(cases, csvCase{"mutant/" + strconv.Itoa(i), mutate(rng, seeds[rng.Intn(len(seeds))])})
	}
	handled, reasons := checkCases(t, o, cases)
	reportReasons(t, "mutants", len(cases), handled, reasons)
}
