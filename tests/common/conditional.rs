//! s3s-fs with the conditional-request checks S3 performs on GET and HEAD.

use http::{HeaderMap, HeaderValue};
use s3s::dto::{
    CopyObjectInput, CopyObjectOutput, CreateBucketInput, CreateBucketOutput, DeleteObjectInput, DeleteObjectOutput,
    DeleteObjectsInput, DeleteObjectsOutput, ETag, ETagCondition, GetBucketLocationInput, GetBucketLocationOutput,
    GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput,
    ListBucketsInput, ListBucketsOutput, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output,
    PutObjectInput, PutObjectOutput, Timestamp, TimestampFormat,
};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

/// An `s3s::S3` implementation that delegates to `s3s_fs::FileSystem` and
/// evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since
/// on GetObject and HeadObject.
///
/// It exists because s3s-fs 0.14.1 ignores these headers and never returns
/// 304 or 412, while S3, Ceph RGW and MinIO do.
///
/// The order follows RFC 9110 section 13.2.2, which matches S3's documented
/// behaviour: a failing If-Match, or a failing If-Unmodified-Since without
/// If-Match, gives 412 PreconditionFailed. Then a matching If-None-Match, or
/// an If-Modified-Since without If-None-Match that the object is not newer
/// than, gives 304 Not Modified with ETag and Last-Modified. A missing key
/// stays 404 NoSuchKey whatever the conditions.
///
/// NOTE: s3s 0.14.1 parses each of these headers as a single value, so a
/// list such as `If-None-Match: "a", "b"` gets 400 InvalidArgument before this
/// code runs. S3 accepts such lists.
pub struct ConditionalS3 {
    inner: s3s_fs::FileSystem,
}

impl ConditionalS3 {
    pub fn new(inner: s3s_fs::FileSystem) -> Self {
        ConditionalS3 { inner }
    }
}

/// The four conditional headers of a GetObject or HeadObject request.
struct Preconditions {
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
}

impl Preconditions {
    fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// Returns the 412 or 304 error S3 sends for an object with this ETag and
    /// Last-Modified time, or `Ok` when the request goes ahead.
    fn evaluate(&self, e_tag: Option<&ETag>, last_modified: Option<&Timestamp>) -> S3Result<()> {
        let modified_seconds = last_modified.map(unix_seconds);

        if let Some(condition) = &self.if_match {
            let matched = match (condition, e_tag) {
                (ETagCondition::Any, Some(_)) => true,
                (ETagCondition::ETag(expected), Some(actual)) => actual.strong_cmp(expected),
                (_, None) => false,
            };
            if !matched {
                return Err(precondition_failed());
            }
        } else if let (Some(since), Some(modified)) = (&self.if_unmodified_since, modified_seconds)
            && modified > unix_seconds(since)
        {
            return Err(precondition_failed());
        }

        if let Some(condition) = &self.if_none_match {
            let matched = match (condition, e_tag) {
                (ETagCondition::Any, Some(_)) => true,
                (ETagCondition::ETag(expected), Some(actual)) => actual.weak_cmp(expected),
                (_, None) => false,
            };
            if matched {
                return Err(not_modified(e_tag, last_modified));
            }
        } else if let (Some(since), Some(modified)) = (&self.if_modified_since, modified_seconds)
            && modified <= unix_seconds(since)
        {
            return Err(not_modified(e_tag, last_modified));
        }
        Ok(())
    }
}

/// Returns whole seconds since the Unix epoch. HTTP dates carry whole
/// seconds, so comparisons drop the sub-second part of file times.
fn unix_seconds(timestamp: &Timestamp) -> i64 {
    let text = format_http_date(timestamp);
    let time = httpdate::parse_http_date(&text).expect("s3s formats valid HTTP dates");
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .expect("object times are after 1970")
        .as_secs();
    i64::try_from(seconds).expect("seconds fit in i64")
}

fn format_http_date(timestamp: &Timestamp) -> String {
    let mut buffer = Vec::new();
    timestamp
        .format(TimestampFormat::HttpDate, &mut buffer)
        .expect("format a timestamp as an HTTP date");
    String::from_utf8(buffer).expect("HTTP dates are ASCII")
}

fn precondition_failed() -> S3Error {
    S3Error::with_message(
        S3ErrorCode::PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold",
    )
}

fn not_modified(e_tag: Option<&ETag>, last_modified: Option<&Timestamp>) -> S3Error {
    let mut error = S3Error::new(S3ErrorCode::NotModified);
    let mut headers = HeaderMap::new();
    if let Some(value) = e_tag.and_then(|tag| tag.to_http_header().ok()) {
        headers.insert(http::header::ETAG, value);
    }
    if let Some(timestamp) = last_modified {
        let value = HeaderValue::from_str(&format_http_date(timestamp)).expect("HTTP dates are valid header values");
        headers.insert(http::header::LAST_MODIFIED, value);
    }
    error.set_headers(headers);
    error
}

#[async_trait::async_trait]
impl S3 for ConditionalS3 {
    async fn get_object(&self, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
        let preconditions = Preconditions {
            if_match: req.input.if_match.clone(),
            if_none_match: req.input.if_none_match.clone(),
            if_modified_since: req.input.if_modified_since.clone(),
            if_unmodified_since: req.input.if_unmodified_since.clone(),
        };
        if !preconditions.is_empty() {
            // Conditions are checked before the range, as S3 does, so a
            // matching If-None-Match gives 304 even for an unsatisfiable range.
            let head_request = req.clone().map_input(|input| HeadObjectInput {
                bucket: input.bucket,
                key: input.key,
                version_id: input.version_id,
                ..HeadObjectInput::default()
            });
            let head = self.inner.head_object(head_request).await?;
            preconditions.evaluate(head.output.e_tag.as_ref(), head.output.last_modified.as_ref())?;
        }
        self.inner.get_object(req).await
    }

    async fn head_object(&self, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
        let preconditions = Preconditions {
            if_match: req.input.if_match.clone(),
            if_none_match: req.input.if_none_match.clone(),
            if_modified_since: req.input.if_modified_since.clone(),
            if_unmodified_since: req.input.if_unmodified_since.clone(),
        };
        let head = self.inner.head_object(req).await?;
        preconditions.evaluate(head.output.e_tag.as_ref(), head.output.last_modified.as_ref())?;
        Ok(head)
    }

    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        self.inner.put_object(req).await
    }

    async fn copy_object(&self, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
        self.inner.copy_object(req).await
    }

    async fn delete_object(&self, req: S3Request<DeleteObjectInput>) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.inner.delete_object(req).await
    }

    async fn delete_objects(&self, req: S3Request<DeleteObjectsInput>) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.inner.delete_objects(req).await
    }

    async fn create_bucket(&self, req: S3Request<CreateBucketInput>) -> S3Result<S3Response<CreateBucketOutput>> {
        self.inner.create_bucket(req).await
    }

    async fn head_bucket(&self, req: S3Request<HeadBucketInput>) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.inner.get_bucket_location(req).await
    }

    async fn list_buckets(&self, req: S3Request<ListBucketsInput>) -> S3Result<S3Response<ListBucketsOutput>> {
        self.inner.list_buckets(req).await
    }

    async fn list_objects(&self, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
        self.inner.list_objects(req).await
    }

    async fn list_objects_v2(&self, req: S3Request<ListObjectsV2Input>) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.inner.list_objects_v2(req).await
    }
}
