package main

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/estela-go/estela-go/sdk/errdefs"
	"github.com/estela-go/estela-go/sdk/pluginapi"
)

const (
	// defaultPartSize is the part size of multipart uploads. An archive
	// smaller than one part goes up in a single PutObject. With 10,000 parts
	// at most, archives up to about 78 GiB fit.
	defaultPartSize = 8 << 20
	// uploadConcurrency is the number of parts sent at once. The upload
	// manager buffers uploadConcurrency+1 parts, so one upload holds up to
	// 24 MiB of memory with the default part size.
	uploadConcurrency = 2
	// endpointRegion is the signing region used with a custom endpoint when
	// no region is set. MinIO accepts it unless its own region is changed.
	endpointRegion = "us-east-1"
)

// state is the set of clients and resolved settings that Configure builds
// from valid settings. It never changes, because Configure replaces it whole.
type state struct {
	settings *settings
	bucket   string
	prefix   string
	region   string
	// credentials is the credentials cache shared by the clients.
	credentials aws.CredentialsProvider
	s3          *s3.Client
	uploader    *manager.Uploader
	// registry is nil when the settings have no ecr block.
	registry *registry
}

// newState builds the AWS clients for s. It returns nil when resp received
// an error diagnostic.
func (p *provider) newState(ctx context.Context, s *settings, resp *pluginapi.ConfigureResponse) *state {
	cfg, err := p.loadAWSConfig(ctx, s.Region)
	if err != nil {
		resp.AddError("", "cannot load the AWS configuration", err.Error())
		return nil
	}
	if cfg.Region == "" && s.Endpoint != "" {
		cfg.Region = endpointRegion
	}
	if cfg.Region == "" {
		resp.AddError("region", "missing region", "Set region, or AWS_REGION in the plugin's environment.")
		return nil
	}
	client := newS3Client(cfg, s)
	st := &state{
		settings:    s,
		bucket:      s.Bucket,
		prefix:      s.prefix(),
		region:      cfg.Region,
		credentials: cfg.Credentials,
		s3:          client,
		uploader: manager.NewUploader(client, func(u *manager.Uploader) {
			u.PartSize = p.partSize
			u.Concurrency = uploadConcurrency
		}),
	}
	if s.ECR != nil {
		st.registry = newRegistry(newECRClient(cfg, s.ECR), s.ECR.RegistryID, p.logger)
	}
	return st
}

// loadAWSConfig reads the standard AWS configuration chain: environment,
// shared config and credentials files, then container and instance roles.
// It resolves no credentials yet, so it makes no network call.
func (p *provider) loadAWSConfig(ctx context.Context, region string) (aws.Config, error) {
	options := append([]func(*config.LoadOptions) error{}, p.loadOptions...)
	if region != "" {
		options = append(options, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, options...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	return cfg, nil
}

func newS3Client(cfg aws.Config, s *settings) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = s.usePathStyle()
		if s.Endpoint == "" {
			return
		}
		o.BaseEndpoint = aws.String(s.Endpoint)
		// S3-compatible stores differ in their support of the CRC32
		// checksums that the SDK sends and checks by default since
		// service/s3 v1.73.0, so send and check them only where S3
		// requires them.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
}

func newECRClient(cfg aws.Config, e *ecrSettings) *ecr.Client {
	return ecr.NewFromConfig(cfg, func(o *ecr.Options) {
		if e.Region != "" {
			o.Region = e.Region
		}
		if e.Endpoint != "" {
			o.BaseEndpoint = aws.String(e.Endpoint)
		}
	})
}

// checkCredentials gets AWS credentials from the configuration chain, or
// from the cache the clients share. Calls check them first because a
// failure deep in a client can carry the HTTP status of a metadata service,
// which would read as an error of S3 or ECR.
func (st *state) checkCredentials(ctx context.Context) error {
	if st.credentials == nil {
		return nil
	}
	if _, err := st.credentials.Retrieve(ctx); err != nil {
		if isContextError(err) {
			return err
		}
		return errdefs.Unavailable("no AWS credentials found in the environment, shared files or instance role: %v", err)
	}
	return nil
}
