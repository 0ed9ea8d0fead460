package builtin

//go:generate go run ./internal/convert -out data/use-lite.bin -license data/LICENSE
