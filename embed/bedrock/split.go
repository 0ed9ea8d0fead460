package bedrock

import "github.com/freshen-io/freshen/embed/internal/window"

// windows cuts text into pieces that each fit lim, at sentence
// boundaries where it can, then at word boundaries, then between
// characters (a "word" longer than a window: base64, a minified line).
// Pieces are trimmed of surrounding white space and never empty; a text
// that fits is returned whole, untouched. text must have something
// besides white space.
//
// Sizes add up, so every character is measured once, and pieces are
// measured with their white space (a little more than is sent).
func windows(text string, lim limits) []string {
	if lim.fits(measure(text)) {
		return []string{text}
	}
	return window.Cut(text, window.Measure[size]{
		Size: measure,
		Fits: lim.fits,
		Plus: size.plus,
	})
}
