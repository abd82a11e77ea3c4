# asg-agent.pkr.hcl - bake an AMI with asg-agent, its configuration and,
# optionally, a release already installed.
#
#   packaging/build-deb build/packages
#   packer validate -var deb=build/packages/asg-agent_0.1.0-1_amd64.deb \
#     -var artifact_url='s3://my-releases/myapp/myapp-{version}.tar.gz' \
#     -var app_unit=myapp.service packaging/packer/asg-agent.pkr.hcl
#   packer build ...same -var options... packaging/packer/asg-agent.pkr.hcl
#
# Written for Debian 12's packer (1.6.6), where amazon-ebs is built in. Packer
# 1.7 and later load the builder as a plugin: install it first with
#   packer plugins install github.com/hashicorp/amazon
# (or add a required_plugins block for it to the packer block below).
#
# The agent is enabled but not started in the image: the package never starts
# it, so nothing boots on the builder. With prefetch_version or prefetch_group
# the release is downloaded, verified and installed now ("asg-agent prefetch"),
# and the instances' agents find it installed at boot and skip the download.
# The builder then needs an instance profile (iam_instance_profile) allowed to
# read the release (s3:GetObject) and, for prefetch_group, the group's tags
# (autoscaling:DescribeTags).

packer {
  required_version = ">= 1.6.6"
}

variable "region" {
  type        = string
  default     = "eu-west-1"
  description = "Region the AMI is built in."
}

variable "instance_type" {
  type    = string
  default = "t3.small"
}

variable "source_ami_owner" {
  type        = string
  default     = "136693071363"
  description = "Debian's AWS account; the newest debian-12-amd64 image is used."
}

variable "ami_name_prefix" {
  type    = string
  default = "asg-agent"
}

variable "iam_instance_profile" {
  type        = string
  default     = ""
  description = "Builder instance profile; needed by prefetch_version and prefetch_group."
}

variable "deb" {
  type        = string
  description = "Path of the asg-agent .deb (packaging/build-deb)."
}

# [artifact]
variable "artifact_url" {
  type        = string
  description = "[artifact] url, e.g. s3://my-releases/myapp/myapp-{version}.tar.gz"
}

variable "sha256_tag" {
  type        = string
  default     = "asg-agent:sha256"
  description = "[artifact] sha256_tag; empty when releases are only signed."
}

variable "public_key_pem" {
  type        = string
  default     = ""
  description = "PEM text of the release signing key; written to /etc/asg-agent/release-key.pem."
}

# [app]: set exactly one of app_unit and app_command.
variable "app_unit" {
  type    = string
  default = ""
}

variable "app_unit_file" {
  type        = string
  default     = ""
  description = "Text of the app's unit file, installed as /etc/systemd/system/APP_UNIT (see example-app.service)."
}

variable "app_command" {
  type    = string
  default = ""
}

variable "health_url" {
  type    = string
  default = "http://127.0.0.1:8080/health"
}

# [lifecycle]
variable "launch_hook" {
  type    = string
  default = ""
}

variable "terminate_hook" {
  type    = string
  default = ""
}

variable "drain" {
  type    = number
  default = 30
}

# Bake a release: a version (with its SHA-256 unless releases are signed), or
# a group whose tags name it.
variable "prefetch_version" {
  type    = string
  default = ""
}

variable "prefetch_sha256" {
  type    = string
  default = ""
}

variable "prefetch_group" {
  type    = string
  default = ""
}

locals {
  timestamp       = formatdate("YYYYMMDD-hhmmss", timestamp())
  public_key_path = var.public_key_pem == "" ? "" : "/etc/asg-agent/release-key.pem"

  # /etc/asg-agent/agent.conf; everything else keeps its default.
  agent_conf = join("\n", [
    "# Written by packaging/packer/asg-agent.pkr.hcl; see asg-agent.conf(5).",
    "[artifact]",
    "url = ${var.artifact_url}",
    "sha256_tag = ${var.sha256_tag}",
    "public_key = ${local.public_key_path}",
    "",
    "[app]",
    "unit = ${var.app_unit}",
    "command = ${var.app_command}",
    "health_url = ${var.health_url}",
    "",
    "[lifecycle]",
    "launch_hook = ${var.launch_hook}",
    "terminate_hook = ${var.terminate_hook}",
    "drain = ${var.drain}",
    "",
  ])
}

source "amazon-ebs" "asg-agent" {
  region               = var.region
  instance_type        = var.instance_type
  iam_instance_profile = var.iam_instance_profile
  ssh_username         = "admin"
  ami_name             = "${var.ami_name_prefix}-${local.timestamp}"
  ami_description      = "Debian 12 with asg-agent"

  source_ami_filter {
    owners      = [var.source_ami_owner]
    most_recent = true
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
  }

  tags = {
    Name       = "${var.ami_name_prefix}-${local.timestamp}"
    asg-agent  = "baked"
    prefetched = var.prefetch_version != "" ? var.prefetch_version : var.prefetch_group
  }
}

build {
  sources = ["source.amazon-ebs.asg-agent"]

  provisioner "file" {
    source      = var.deb
    destination = "/tmp/asg-agent.deb"
  }

  provisioner "shell" {
    environment_vars = [
      "AGENT_CONF=${local.agent_conf}",
      "PUBLIC_KEY_PEM=${var.public_key_pem}",
      "APP_UNIT=${var.app_unit}",
      "APP_UNIT_FILE=${var.app_unit_file}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    inline = [
      "set -eu",
      "export DEBIAN_FRONTEND=noninteractive",
      "apt-get update -q",
      "apt-get install -y -q /tmp/asg-agent.deb",
      "rm -f /tmp/asg-agent.deb",
      "printf '%s\\n' \"$AGENT_CONF\" > /etc/asg-agent/agent.conf",
      "chmod 0644 /etc/asg-agent/agent.conf",
      "if [ -n \"$PUBLIC_KEY_PEM\" ]; then printf '%s\\n' \"$PUBLIC_KEY_PEM\" > /etc/asg-agent/release-key.pem; chmod 0644 /etc/asg-agent/release-key.pem; fi",
      "if [ -n \"$APP_UNIT_FILE\" ]; then printf '%s\\n' \"$APP_UNIT_FILE\" > \"/etc/systemd/system/$APP_UNIT\"; systemctl daemon-reload; fi",
      "asg-agent check-config",
      "systemctl is-enabled asg-agent.service",
    ]
  }

  provisioner "shell" {
    environment_vars = [
      "AWS_REGION=${var.region}",
      "PREFETCH_VERSION=${var.prefetch_version}",
      "PREFETCH_SHA256=${var.prefetch_sha256}",
      "PREFETCH_GROUP=${var.prefetch_group}",
    ]
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    inline = [
      "set -eu",
      "if [ -n \"$PREFETCH_VERSION\" ]; then asg-agent prefetch --version \"$PREFETCH_VERSION\" $${PREFETCH_SHA256:+--sha256 \"$PREFETCH_SHA256\"}; elif [ -n \"$PREFETCH_GROUP\" ]; then asg-agent prefetch --group \"$PREFETCH_GROUP\"; else echo 'no release baked: the instances download it at boot'; fi",
      "ls -l /var/lib/asg-agent /var/lib/asg-agent/releases 2>/dev/null || true",
      # Nothing of this machine's boot may reach the instances.
      "rm -f /var/lib/asg-agent/state.json",
    ]
  }
}
