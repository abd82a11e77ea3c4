#!/bin/bash
# bench/userdata.sh - the user-data script asg-agent replaces, written the way
# teams write it: bash + AWS CLI + curl + sha256sum + tar. bench/boot runs it
# against the same fake AWS as the agent, on a fresh instance each time, and
# times it from start to exit (the lifecycle hook completed with CONTINUE).
#
# It does the agent's job, step by step:
#   IMDSv2 token, instance id and region from IMDS; the group's name from the
#   instance's aws:autoscaling:groupName tag (EC2 DescribeTags); the version and
#   sha256 tags from the group (Auto Scaling DescribeTags), polled every 5 s
#   while the version tag is absent; the artifact with `aws s3 cp`; `sha256sum -c`;
#   `tar xzf` into a release dir; the app started in the background; its health
#   polled with curl every second; CompleteLifecycleAction CONTINUE (ABANDON if
#   the tag never came or the app never turned healthy).
#
# Where it is kind to itself: one DescribeTags call reads both tags, and the
# hook's name comes from a naming convention instead of DescribeLifecycleHooks.
#
# Environment (bench/boot sets all of it; nothing has a default that reaches
# outside the machine):
#   AWS_EC2_METADATA_SERVICE_ENDPOINT  IMDS base URL; on EC2 http://169.254.169.254.
#                                      The AWS CLI reads the same variable for its
#                                      instance-role credentials.
#   AWS_ENDPOINT_URL                   (optional) the AWS API endpoint, for the CLI
#   APP_ROOT                           where releases go (on EC2 e.g. /opt/app)
#   APP_PORT                           the app's port (health at /health)
#   ARTIFACT_BASE                      s3://BUCKET/PREFIX; the artifact is PREFIX/VERSION.tar.gz
#   LIFECYCLE_HOOK                     (optional) hook name; default GROUP-launch
#   TAG_POLLS, HEALTH_POLLS            (optional) bounds of the two wait loops
set -euo pipefail

IMDS=${AWS_EC2_METADATA_SERVICE_ENDPOINT:?IMDS endpoint not set}
APP_ROOT=${APP_ROOT:?}
APP_PORT=${APP_PORT:-8080}
ARTIFACT_BASE=${ARTIFACT_BASE:?}
VERSION_TAG=asg-agent:version
SHA_TAG=asg-agent:sha256
TAG_POLLS=${TAG_POLLS:-60}        # x 5 s
HEALTH_POLLS=${HEALTH_POLLS:-120} # x 1 s

log() { echo "$(date +%s.%N) userdata: $*"; }

log "start"
TOKEN=$(curl -sSf --connect-timeout 2 --max-time 5 -X PUT "$IMDS/latest/api/token" \
    -H "X-aws-ec2-metadata-token-ttl-seconds: 21600")
md() { curl -sSf --connect-timeout 2 --max-time 5 -H "X-aws-ec2-metadata-token: $TOKEN" \
    "$IMDS/latest/meta-data/$1"; }
INSTANCE_ID=$(md instance-id)
REGION=$(md placement/region)
log "identity $INSTANCE_ID $REGION"

ASG=$(aws ec2 describe-tags --region "$REGION" \
    --filters "Name=resource-id,Values=$INSTANCE_ID" "Name=key,Values=aws:autoscaling:groupName" \
    --query 'Tags[0].Value' --output text)
HOOK=${LIFECYCLE_HOOK:-$ASG-launch}
log "group $ASG"

lifecycle() {
    aws autoscaling complete-lifecycle-action --region "$REGION" \
        --auto-scaling-group-name "$ASG" --lifecycle-hook-name "$HOOK" \
        --instance-id "$INSTANCE_ID" --lifecycle-action-result "$1"
}

VERSION=None
SHA256=None
for _ in $(seq 1 "$TAG_POLLS"); do
    OUT=$(aws autoscaling describe-tags --region "$REGION" \
        --filters "Name=auto-scaling-group,Values=$ASG" \
        --query "[Tags[?Key=='$VERSION_TAG'].Value | [0], Tags[?Key=='$SHA_TAG'].Value | [0]]" \
        --output text) || OUT="None None"
    read -r VERSION SHA256 <<<"$OUT"
    [ "$VERSION" != None ] && break
    log "tag $VERSION_TAG not there yet"
    sleep 5
done
if [ "$VERSION" = None ] || [ "$SHA256" = None ]; then
    log "no version tag; ABANDON"
    lifecycle ABANDON
    exit 1
fi
log "version $VERSION sha256 $SHA256"

RELEASE=$APP_ROOT/releases/$VERSION
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
aws s3 cp --quiet --region "$REGION" "$ARTIFACT_BASE/$VERSION.tar.gz" "$TMP/app.tar.gz"
log "downloaded"
echo "$SHA256  $TMP/app.tar.gz" | sha256sum -c --quiet -
mkdir -p "$RELEASE"
tar xzf "$TMP/app.tar.gz" -C "$RELEASE"
ln -sfn "$RELEASE" "$APP_ROOT/current"
log "installed $RELEASE"

cd "$APP_ROOT/current"
ASG_AGENT_VERSION=$VERSION nohup python3 app.py "$APP_PORT" >"$APP_ROOT/app.log" 2>&1 &
log "started app pid $!"

healthy=0
for _ in $(seq 1 "$HEALTH_POLLS"); do
    if curl -sf --connect-timeout 1 --max-time 2 -o /dev/null "http://127.0.0.1:$APP_PORT/health"; then
        healthy=1
        break
    fi
    sleep 1
done
if [ "$healthy" != 1 ]; then
    log "app never turned healthy; ABANDON"
    lifecycle ABANDON
    exit 1
fi
log "healthy"

lifecycle CONTINUE
log "CONTINUE sent"
