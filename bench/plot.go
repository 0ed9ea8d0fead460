package main

import (
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math"
	"os"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

var palette = []color.RGBA{{0x1b, 0x9e, 0x77, 0xff}, {0xd9, 0x5f, 0x02, 0xff}, {0x75, 0x70, 0xb3, 0xff}, {0xe7, 0x29, 0x8a, 0xff}}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Src)
}

// barChart draws grouped bars on a log scale (zeros drawn as a marker).
func barChart(path, title string, groups, series []string, value func(group string, series int) float64) error {
	const w, h, left, bottom, top = 1100, 460, 70, 120, 50
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fillRect(img, img.Bounds(), color.White)
	label(img, left, 25, title, color.Black)
	maxV := 1.0
	for _, g := range groups {
		for s := range series {
			maxV = math.Max(maxV, value(g, s))
		}
	}
	decades := math.Ceil(math.Log10(maxV))
	plotH := float64(h - bottom - top)
	y := func(v float64) int {
		if v < 1 {
			return h - bottom
		}
		return h - bottom - int(plotH*math.Log10(v)/decades)
	}
	grey := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	for d := 0.0; d <= decades; d++ {
		yy := y(math.Pow(10, d))
		fillRect(img, image.Rect(left, yy, w-20, yy+1), grey)
		label(img, 5, yy+4, fmtPow(d), color.Black)
	}
	gw := float64(w-left-20) / float64(len(groups))
	bw := int(gw * 0.8 / float64(len(series)))
	for gi, g := range groups {
		x0 := left + int(float64(gi)*gw+gw*0.1)
		for s := range series {
			v := value(g, s)
			x := x0 + s*bw
			if v < 1 {
				fillRect(img, image.Rect(x, h-bottom-3, x+bw-2, h-bottom), palette[s%len(palette)])
				continue
			}
			fillRect(img, image.Rect(x, y(v), x+bw-2, h-bottom), palette[s%len(palette)])
		}
		// Alternate label rows so long names do not collide.
		label(img, x0, h-bottom+16+14*(gi%2), g, color.Black)
	}
	for s, name := range series {
		x := left + s*180
		fillRect(img, image.Rect(x, h-40, x+14, h-28), palette[s%len(palette)])
		label(img, x+20, h-29, name, color.Black)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return png.Encode(f, img)
}

func fmtPow(d float64) string {
	switch d {
	case 0:
		return "1"
	case 1:
		return "10"
	case 2:
		return "100"
	case 3:
		return "1k"
	case 4:
		return "10k"
	case 5:
		return "100k"
	case 6:
		return "1M"
	}
	return "1e" + string(rune('0'+int(d)))
}
