package weaviate

// SetRowsPage makes Rows hold at most n rows at a time, so that tests
// reach its splitting with few rows; it returns the restoring function.
func SetRowsPage(n int) (restore func()) {
	old := rowsPage
	rowsPage = n
	return func() { rowsPage = old }
}
