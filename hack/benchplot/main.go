// Command benchplot draws the PNG plots of BENCHMARKS.md from the TSV files
// the benchmark scripts write. It is its own module so that the plotting
// library stays out of the calico binary's dependencies.
//
//	benchplot bars  -in datapath.tsv -metrics tcp1_gbps,tcp4_gbps -ylabel Gbit/s -title ... -out x.png
//	benchplot lines -in curve.tsv -xlabel endpoints -ylabel ms -title ... -out y.png
//
// bars reads "row metric round value" lines (hack/bench-datapath.sh) and
// draws, per row, one bar per metric at the median over rounds with a
// min..max whisker. lines reads "series x y" lines and draws one line per
// series through the median y at each x.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"os"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchplot bars|lines [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	in := fs.String("in", "", "input TSV file")
	out := fs.String("out", "", "output PNG file")
	title := fs.String("title", "", "plot title")
	xlabel := fs.String("xlabel", "", "x axis label")
	ylabel := fs.String("ylabel", "", "y axis label")
	metrics := fs.String("metrics", "", "bars: comma-separated metrics, one bar each per row")
	rows := fs.String("rows", "", "bars: comma-separated rows in order (default: order of first appearance)")
	logY := fs.Bool("logy", false, "logarithmic y axis")
	logX := fs.Bool("logx", false, "logarithmic x axis (lines)")
	_ = fs.Parse(os.Args[2:])
	if *in == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "benchplot: -in and -out are required")
		os.Exit(2)
	}
	recs, err := readTSV(*in)
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchplot: %v\n", err)
		os.Exit(1)
	}
	p := plot.New()
	p.Title.Text = *title
	p.X.Label.Text = *xlabel
	p.Y.Label.Text = *ylabel
	if *logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{}
	}
	if *logX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{}
	}
	width := 8 * vg.Inch
	switch os.Args[1] {
	case "bars":
		err = bars(p, recs, split(*metrics), split(*rows))
	case "lines":
		err = lines(p, recs)
	default:
		err = fmt.Errorf("unknown mode %q (bars or lines)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchplot: %v\n", err)
		os.Exit(1)
	}
	if err := p.Save(width, 4.5*vg.Inch, *out); err != nil {
		fmt.Fprintf(os.Stderr, "benchplot: save %s: %v\n", *out, err)
		os.Exit(1)
	}
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// readTSV returns the lines of a TSV file as fields; lines starting with
// '#' and empty ones are skipped.
func readTSV(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var recs [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		recs = append(recs, strings.Split(l, "\t"))
	}
	return recs, sc.Err()
}

func stats(xs []float64) (lo, med, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], med, s[n-1]
}

// errBars is a min..max whisker per bar.
type errBars struct {
	plotter.XYs
	plotter.YErrors
}

func bars(p *plot.Plot, recs [][]string, metrics, rows []string) error {
	if len(metrics) == 0 {
		return errors.New("bars: -metrics is required")
	}
	vals := map[[2]string][]float64{}
	var seen []string
	for _, r := range recs {
		if len(r) < 4 || strings.HasPrefix(r[0], "_") {
			continue
		}
		v, err := strconv.ParseFloat(r[3], 64)
		if err != nil {
			continue
		}
		if !slices.Contains(seen, r[0]) {
			seen = append(seen, r[0])
		}
		vals[[2]string{r[0], r[1]}] = append(vals[[2]string{r[0], r[1]}], v)
	}
	if len(rows) == 0 {
		rows = seen
	}
	var names []string
	for _, row := range rows {
		for _, m := range metrics {
			if len(vals[[2]string{row, m}]) > 0 {
				names = append(names, row)
				break
			}
		}
	}
	if len(names) == 0 {
		return errors.New("bars: no data for these metrics")
	}
	w := vg.Points(60 / float64(len(metrics)))
	for i, m := range metrics {
		var ys plotter.Values
		eb := errBars{}
		for j, row := range names {
			xs := vals[[2]string{row, m}]
			if len(xs) == 0 {
				ys = append(ys, 0)
				eb.XYs = append(eb.XYs, plotter.XY{X: float64(j), Y: 0})
				eb.YErrors = append(eb.YErrors, struct{ Low, High float64 }{})
				continue
			}
			lo, med, hi := stats(xs)
			ys = append(ys, med)
			eb.XYs = append(eb.XYs, plotter.XY{X: float64(j), Y: med})
			eb.YErrors = append(eb.YErrors, struct{ Low, High float64 }{med - lo, hi - med})
		}
		b, err := plotter.NewBarChart(ys, w)
		if err != nil {
			return err
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(metrics)-1)/2)
		p.Add(b)
		p.Legend.Add(m, b)
		e, err := plotter.NewYErrorBars(eb)
		if err != nil {
			return err
		}
		e.LineStyle.Color = color.Black
		// The whiskers sit on the bars: shift them by the bar's offset in
		// data units (one category is 1.0 wide and ~ 80 points).
		off := float64(b.Offset) / 80
		for k := range e.XYs {
			e.XYs[k].X += off
		}
		p.Add(e)
	}
	p.NominalX(names...)
	p.Legend.Top = true
	p.X.Tick.Label.Rotation = 0.3
	p.X.Tick.Label.XAlign = -0.8
	return nil
}

func lines(p *plot.Plot, recs [][]string) error {
	type key struct {
		s string
		x float64
	}
	vals := map[key][]float64{}
	var series []string
	for _, r := range recs {
		if len(r) < 3 {
			continue
		}
		x, err1 := strconv.ParseFloat(r[1], 64)
		y, err2 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if !slices.Contains(series, r[0]) {
			series = append(series, r[0])
		}
		vals[key{r[0], x}] = append(vals[key{r[0], x}], y)
	}
	if len(series) == 0 {
		return errors.New("lines: no data")
	}
	for i, s := range series {
		var pts plotter.XYs
		for k, ys := range vals {
			if k.s == s {
				_, med, _ := stats(ys)
				pts = append(pts, plotter.XY{X: k.x, Y: med})
			}
		}
		slices.SortFunc(pts, func(a, b plotter.XY) int {
			switch {
			case a.X < b.X:
				return -1
			case a.X > b.X:
				return 1
			}
			return 0
		})
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		p.Add(l, sc)
		p.Legend.Add(s, l, sc)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return nil
}
