# bash completion for asg-agent(8)                          -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/asg-agent; works in a
# plain bash too (source it), without the bash-completion package's helpers.

_asg_agent_files()
{
	local IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -f -- "$1"))
}

_asg_agent_dirs()
{
	local IFS=$'\n'
	compopt -o filenames 2>/dev/null
	COMPREPLY=($(compgen -d -- "$1"))
}

_asg_agent()
{
	local cur prev cmd i word
	local commands="help version check-config run status fetch prefetch rollout publish aws"
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()

	# The command is the first word that is neither a global option nor -c's file.
	cmd=
	local cmd_at=0
	for ((i = 1; i < COMP_CWORD; i++)); do
		word=${COMP_WORDS[i]}
		case $word in
		-c) ((i++)) ;;
		-*) ;;
		*) cmd=$word; cmd_at=$i; break ;;
		esac
	done

	if [[ -z $cmd ]]; then
		case $prev in
		-c) _asg_agent_files "$cur"; return ;;
		esac
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "-c -v -h" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		fi
		return
	fi

	case $cmd in
	help)
		((COMP_CWORD == cmd_at + 1)) &&
			COMPREPLY=($(compgen -W "$commands" -- "$cur"))
		;;
	check-config)
		case $prev in
		-c) _asg_agent_files "$cur" ;;
		*) COMPREPLY=($(compgen -W "-c --help" -- "$cur")) ;;
		esac
		;;
	status)
		case $prev in
		--timeout) ;;	# seconds
		*) COMPREPLY=($(compgen -W "--json --wait --timeout --help" -- "$cur")) ;;
		esac
		;;
	fetch)
		case $prev in
		--sha256|--signature) ;;
		--public-key|-o) _asg_agent_files "$cur" ;;
		-x) _asg_agent_dirs "$cur" ;;
		*)
			if [[ $cur == -* ]]; then
				COMPREPLY=($(compgen -W "--sha256 --signature --public-key
				    --allow-unverified -o -x --help" -- "$cur"))
			else
				compopt -o nospace 2>/dev/null
				COMPREPLY=($(compgen -W "s3:// https://" -- "$cur"))
			fi
			;;
		esac
		;;
	prefetch)
		case $prev in
		--version|--sha256|--group) ;;
		*) COMPREPLY=($(compgen -W "--version --sha256 --group --help" -- "$cur")) ;;
		esac
		;;
	rollout)
		if ((COMP_CWORD == cmd_at + 1)); then
			COMPREPLY=($(compgen -W "start step status finish rollback history --help" -- "$cur"))
			return
		fi
		case $prev in
		--live|--idle|--version|--sha256|--timeout|--steps|--bake|--alarm|--step) ;;
		*) COMPREPLY=($(compgen -W "--live --idle --version --sha256 --steps --bake
		    --alarm --auto --force --step --timeout --json --help" -- "$cur")) ;;
		esac
		;;
	publish)
		case $prev in
		--version|--to|--tag-group) ;;
		--sign) _asg_agent_files "$cur" ;;
		*)
			if [[ $cur == -* ]]; then
				COMPREPLY=($(compgen -W "--version --to --sign --tag-group --help" \
				    -- "$cur"))
			else
				_asg_agent_files "$cur"
			fi
			;;
		esac
		;;
	aws)
		local service=${COMP_WORDS[cmd_at+1]}
		if ((COMP_CWORD == cmd_at + 1)); then
			COMPREPLY=($(compgen -W "ec2 autoscaling elbv2 elb cloudwatch sts" -- "$cur"))
		elif ((COMP_CWORD == cmd_at + 2)); then
			case $service in
			ec2)
				COMPREPLY=($(compgen -W "DescribeTags DescribeInstances
				    DescribeInstanceStatus" -- "$cur")) ;;
			autoscaling)
				COMPREPLY=($(compgen -W "DescribeAutoScalingInstances
				    DescribeAutoScalingGroups DescribeTags DescribeLifecycleHooks
				    CompleteLifecycleAction RecordLifecycleActionHeartbeat
				    SetInstanceHealth DescribeWarmPool" -- "$cur")) ;;
			elbv2)
				COMPREPLY=($(compgen -W "DescribeTargetHealth DescribeTargetGroups
				    DescribeLoadBalancers" -- "$cur")) ;;
			elb)
				COMPREPLY=($(compgen -W "DescribeInstanceHealth
				    DescribeLoadBalancers DescribeLoadBalancerAttributes" -- "$cur")) ;;
			cloudwatch)
				COMPREPLY=($(compgen -W "DescribeAlarms PutMetricData
				    GetMetricStatistics ListMetrics" -- "$cur")) ;;
			sts)
				COMPREPLY=($(compgen -W "GetCallerIdentity" -- "$cur")) ;;
			esac
		fi
		;;
	version|run)
		COMPREPLY=($(compgen -W "--help" -- "$cur"))
		;;
	esac
} &&
	complete -F _asg_agent asg-agent

# ex: filetype=sh
