// Package awsconf loads the AWS configuration every AWS client of freshen
// uses (the S3 source, Bedrock, SQS): credentials and region from the
// standard chain, the configured region first, us-east-1 when nothing
// names one.
package awsconf

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
)

// DefaultRegion is used when neither the configuration nor the chain
// names a region.
const DefaultRegion = "us-east-1"

// Load returns the AWS configuration with region (if set) over the
// chain's; opts adjust it further (tests use them for static
// credentials).
func Load(ctx context.Context, region string, opts ...func(*awsconfig.LoadOptions) error) (aws.Config, error) {
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return cfg, err
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	return cfg, nil
}
